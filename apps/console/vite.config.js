/* global process */
import { defineConfig } from 'vite';

// The uPC server that the dev server and `vite preview` pass /api to (UPC_SERVER overrides it).
const target = process.env.UPC_SERVER ?? 'http://localhost:8080';

/** @type {import('vite').ProxyOptions} */
const api = {
  target,
  changeOrigin: true,
  // When the server drops a response mid-way (the event stream, say), drop the browser's too, as a
  // direct connection would: otherwise the console keeps waiting on a stream that will never speak.
  configure: (proxy) => {
    proxy.on('proxyRes', (proxyRes, _req, res) => {
      proxyRes.on('close', () => {
        if (!proxyRes.complete) res.destroy();
      });
    });
  },
};

export default defineConfig({
  root: import.meta.dirname,
  // No React plugin: Vite's own Oxc transform compiles TSX, with the automatic JSX runtime that
  // tsconfig.json's "jsx": "react-jsx" asks for. (The dev server reloads the page on a change.)
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: false,
    reportCompressedSize: false,
  },
  server: { proxy: { '/api': api } },
  preview: { proxy: { '/api': api } },
});
