/** Absolute path of the built dashboard (index.html, app.js, app.css), with a trailing slash. */
export declare const dashboardDir: string;
