/**
 * trove-deepagents: a deepagents sandbox backend over one Trove namespace.
 * @example
 * const sandbox = await TroveSandbox.create({ clientOptions: { apiKey, baseUrl } });
 * const agent = createDeepAgent({ model, backend: sandbox });
 */
export {
  TroveSandbox,
  type TroveSandboxOptions,
  type TroveSandboxCreateOptions,
  type TroveExecuteOptions,
} from './trove-sandbox.js';
export { InvalidPathError } from './paths.js';
