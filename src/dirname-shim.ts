// ssh2 loads its poly1305 helper asynchronously through __dirname, which an ESM
// bundle does not define. This must be the first import of the entry point.
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const scope = globalThis as { __dirname?: string };
scope.__dirname ??= dirname(fileURLToPath(import.meta.url));
