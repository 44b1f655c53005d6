import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// The server mounts the build at /dashboard/, so every asset URL carries that base.
// `npm run dev -w trove-dashboard` proxies the API to TROVE_URL (default http://127.0.0.1:8080)
// so the app stays same-origin in development exactly as in production.
const target = process.env.TROVE_URL ?? 'http://127.0.0.1:8080';
const proxied = ['/v1', '/files', '/exec', '/write', '/delete'];

export default defineConfig({
  base: '/dashboard/',
  plugins: [react()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // Keep every asset a separate file: data: URIs for scripts would need a looser CSP.
    assetsInlineLimit: 0,
    sourcemap: false,
  },
  server: {
    proxy: Object.fromEntries(proxied.map((p) => [p, { target, changeOrigin: false }])),
  },
});
