// One store checkout from the compiled store (no TypeScript loader in the
// timing), for bench/anchors.ts: node bench/checkout.mjs ROOT DIGEST TARGET
import { Store } from '../dist/store/store.js';

const [root, digest, target] = process.argv.slice(2);
if (!root || !digest || !target) throw new Error('usage: checkout.mjs ROOT DIGEST TARGET');
await (await Store.open(root)).checkout(digest, target);
