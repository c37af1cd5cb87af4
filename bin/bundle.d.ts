/** Types of bin/bundle.js (plain JavaScript: it runs before any TypeScript can be loaded). */
export declare const ENTRIES: { readonly cli: string; readonly 'block-worker': string };
/** The bundle's entry points as file URLs, built first when a source changed; rejects when it cannot be built or written. */
export declare function bundle(): Promise<Record<keyof typeof ENTRIES, URL>>;
