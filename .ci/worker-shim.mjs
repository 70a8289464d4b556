// Writes the Worker entry module around wasm-bindgen's output, as worker-build 0.8.7 does
// (its src/js/shim.js and its `generate_handlers`/`add_export_wrappers`, Apache-2.0, from
// cloudflare/workers-rs), so the build needs no `cargo install worker-build`:
//   node .ci/worker-shim.mjs DIR   reads DIR/index.js (wasm-bindgen, --target module), writes DIR/shim.js
// The entry point is a WorkerEntrypoint whose fetch/scheduled/... call the exported Rust
// handlers; every exported class (the Durable Objects) is wrapped so that after a wasm trap the
// instance is re-created instead of every later call failing. One addition of ours: when the
// crate exports `__edgelayer_start` (the edge does), it is called once as the isolate starts,
// with the `env` that `cloudflare:workers` exports, so the config is read before the first
// request rather than during it.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.argv[2];
const index = readFileSync(join(dir, 'index.js'), 'utf8');
const SYSTEM = new Set(['__wbg_reset_state', '__worker_init_state', '__edgelayer_start']);
const EVENTS = new Set(['fetch', 'queue', 'scheduled', 'email', 'connect']);

// `export` declarations at a statement boundary, as worker-build finds them.
const decls = [...index.matchAll(/(?:^|[\s;}])export /g)].map((m) => index.slice(m.index + m[0].length - 'export '.length));
const functions = [];
const classes = [];
for (const d of decls) {
  let m;
  if ((m = d.match(/^export (?:async )?function\s+([\w$]+)\s*\(/))) functions.push(m[1]);
  else if ((m = d.match(/^export \{[^}]*? as ([\w$]+)\s*\}/))) functions.push(m[1]);
  else if ((m = d.match(/^export class ([\w$]+)\s*\{/))) classes.push(m[1]);
}
const handlers = functions
  .filter((f) => !SYSTEM.has(f))
  .map((f) =>
    EVENTS.has(f)
      ? `Entrypoint.prototype.${f} = function ${f} (arg) {\n  return exports.${f}.call(this, arg, this.env, this.ctx);\n}\n`
      : `Entrypoint.prototype.${f} = exports.${f};\n`,
  )
  .join('');
if (!functions.includes('fetch')) throw new Error(`worker-shim: no fetch handler exported by ${dir}/index.js`);

const start = functions.includes('__edgelayer_start')
  ? `
try {
  exports.__edgelayer_start(env);
} catch (e) {
  handleMaybeCritical(e);
  console.error('edgelayer: starting failed', e);
}
`
  : '';
const shim = `import { WorkerEntrypoint${start ? ', env' : ''} } from "cloudflare:workers";
import * as exports from "./index.js";

Error.stackTraceLimit = 100;
const initState = exports.__worker_init_state();
${start}
function checkReinitialize() {
  if (initState.criticalError) {
    console.log("Reinitializing Wasm application");
    exports.__wbg_reset_state();
    initState.criticalError = false;
    initState.instanceId++;
  }
}

addEventListener('error', (e) => {
  handleMaybeCritical(e.error);
});

function handleMaybeCritical(e) {
  if (e instanceof WebAssembly.RuntimeError) {
    console.error('Critical', e);
    initState.criticalError = true;
  }
}

class Entrypoint extends WorkerEntrypoint {}

${handlers}
const instanceProxyHooks = {
  set: (target, prop, value, receiver) => Reflect.set(target.instance, prop, value, receiver),
  has: (target, prop) => Reflect.has(target.instance, prop),
  deleteProperty: (target, prop) => Reflect.deleteProperty(target.instance, prop),
  apply: (target, thisArg, args) => Reflect.apply(target.instance, thisArg, args),
  construct: (target, args, newTarget) => Reflect.construct(target.instance, args, newTarget),
  getPrototypeOf: (target) => Reflect.getPrototypeOf(target.instance),
  setPrototypeOf: (target, proto) => Reflect.setPrototypeOf(target.instance, proto),
  isExtensible: (target) => Reflect.isExtensible(target.instance),
  preventExtensions: (target) => Reflect.preventExtensions(target.instance),
  getOwnPropertyDescriptor: (target, prop) => Reflect.getOwnPropertyDescriptor(target.instance, prop),
  defineProperty: (target, prop, descriptor) => Reflect.defineProperty(target.instance, prop, descriptor),
  ownKeys: (target) => Reflect.ownKeys(target.instance),
};

const classProxyHooks = {
  construct(ctor, args, newTarget) {
    try {
      checkReinitialize();
      const instance = {
        instance: Reflect.construct(ctor, args, newTarget),
        instanceId: initState.instanceId,
        ctor,
        args,
        newTarget
      };
      return new Proxy(instance, {
        ...instanceProxyHooks,
        get(target, prop, receiver) {
          if (target.instanceId !== initState.instanceId) {
            target.instance = Reflect.construct(target.ctor, target.args, target.newTarget);
            target.instanceId = initState.instanceId;
          }
          const original = Reflect.get(target.instance, prop, receiver);
          if (typeof original !== 'function') return original;
          if (original.constructor === Function) {
            return new Proxy(original, {
              apply(target, thisArg, argArray) {
                checkReinitialize();
                try {
                  return target.apply(thisArg, argArray);
                } catch (e) {
                  handleMaybeCritical(e);
                  throw e;
                }
              }
            });
          } else {
            return new Proxy(original, {
              async apply(target, thisArg, argArray) {
                checkReinitialize();
                try {
                  return await target.apply(thisArg, argArray);
                } catch (e) {
                  handleMaybeCritical(e);
                  throw e;
                }
              }
            });
          }
        }
      });
    } catch (e) {
      initState.criticalError = true;
      throw e;
    }
  }
};

export default new Proxy(Entrypoint, classProxyHooks);
${classes.map((c) => `export const ${c} = new Proxy(exports.${c}, classProxyHooks);\n`).join('')}`;
writeFileSync(join(dir, 'shim.js'), shim);
console.log(`worker-shim: handlers ${functions.filter((f) => !SYSTEM.has(f)).join(', ')}; classes ${classes.join(', ')}`);
