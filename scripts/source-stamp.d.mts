// Types of source-stamp.mjs (plain JavaScript: the launcher and the build load it before anything is compiled).
/** The file in dist/ holding the stamp of the sources it was built from. */
export declare const STAMP_FILE: string;
/** The stamp of the sources under `srcDir`, its siblings (`migrations/` next to it) and the build's inputs now. */
export declare function sourceStamp(srcDir: string): string;
/** Whether `distDir` holds a build of exactly the sources under `srcDir` and its siblings (false when either is missing). */
export declare function isFreshBuild(distDir: string, srcDir: string): boolean;
