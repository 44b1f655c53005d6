/** The CLI's version; a test keeps it equal to package.json (read at build time would slow start-up). */
export const CLI_VERSION = '0.1.0';
