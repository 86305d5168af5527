/** The admin web console (issue 6), built with Vite to static files that the server serves at `/`. */
export const CONSOLE_VERSION = '0.1.0';
