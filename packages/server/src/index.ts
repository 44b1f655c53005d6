export { buildApp } from './app.js';
export { loadConfig, type Config } from './config.js';
export { createContext, type AppContext } from './context.js';
export { serve, main } from './main.js';
export { AppError, ERROR_CODES, type ErrorCode } from './errors.js';
