#!/usr/bin/env node
// Greedy decoding of an exported decoder language model (lowbit export --from gpt.lbq) in ONNX
// Runtime (the onnxruntime-node binding of third_party/node), and appends the argmax of the last
// position at every step (ties to the lowest id, as lowbit). Two modes, chosen by the model's inputs:
//   full recompute (lowbit export without --kv-cache): every step runs the whole text so far
//     (input tokens int64 [1, T], output logits [1, T, vocab]);
//   KV cache (lowbit export --kv-cache: inputs past_key_<l> / past_value_<l>): the prompt runs once
//     with empty past tensors [1, H, 0, hd], then one token per run, present_* fed back as past_*.
//
// usage: node tests/export/ort_generate.js MODEL.onnx --prompt 116,104,101 [--prompt ...] --steps N
//            [--tokens FILE] [--logits FILE] [--threads T] [--optimized FILE]
//   --tokens FILE   JSON: one array of generated token ids per prompt
//   --logits FILE   raw float32: per prompt, [T_last, vocab] with T_last = prompt length + N - 1 (the
//                   text whose last position gave the last token): full recompute, the logits of the
//                   last run; KV cache, the rows of every run in order (prefill rows, then one per step)
//   --optimized F   also write the model as ONNX Runtime optimized it (to inspect fusions)
//   --threads T     intraOpNumThreads (inter-op: 1, sequential)
//   --bench P,D     instead: timing only (JSON on stdout): prefill of a P-token prompt and D greedy
//                   decode steps (full recompute or with the KV cache, per the model), medians of
//                   --iterations runs after a warm-up
// The module is taken from $LOWBIT_ORT_NODE_MODULES or third_party/node/node_modules.
'use strict';
const fs = require('fs');
const path = require('path');

function usage(message) {
  process.stderr.write(`ort_generate.js: ${message}\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const args = { positional: [], prompts: [], steps: 64, threads: 1, iterations: 5 };
  for (let i = 0; i < argv.length; ++i) {
    const a = argv[i];
    const value = () => (i + 1 < argv.length ? argv[++i] : usage(`${a} needs a value`));
    if (a === '--prompt') args.prompts.push(value().split(',').map(Number));
    else if (a === '--steps') args.steps = Number(value());
    else if (a === '--tokens') args.tokens = value();
    else if (a === '--logits') args.logits = value();
    else if (a === '--threads') args.threads = Number(value());
    else if (a === '--optimized') args.optimized = value();
    else if (a === '--bench') args.bench = value().split(',').map(Number);
    else if (a === '--iterations') args.iterations = Number(value());
    else if (a.startsWith('--')) usage(`unknown flag ${a}`);
    else args.positional.push(a);
  }
  if (args.positional.length !== 1) usage('expected MODEL.onnx');
  if (!args.bench && args.prompts.length === 0) usage('expected at least one --prompt');
  for (const p of args.prompts)
    if (p.length === 0 || p.some((t) => !Number.isInteger(t) || t < 0 || t > 255)) usage('a prompt is token ids 0..255, comma-separated');
  return args;
}

function argmax(row) {
  let best = 0;
  for (let c = 1; c < row.length; ++c) if (row[c] > row[best]) best = c;
  return best;
}

async function logitsOf(ort, session, text) {
  const ids = BigInt64Array.from(text.map((t) => BigInt(t)));
  const out = await session.run({ tokens: new ort.Tensor('int64', ids, [1, text.length]) });
  return out.logits;
}

// The KV-cache layout of a --kv-cache export: layers, heads, head size (from the inputs' metadata).
function cacheLayout(session) {
  const layers = session.inputNames.filter((n) => /^past_key_\d+$/.test(n)).length;
  if (layers === 0) return null;
  const meta = (session.inputMetadata || []).find((m) => m.name === 'past_key_0');
  if (!meta || !meta.shape || typeof meta.shape[1] !== 'number' || typeof meta.shape[3] !== 'number')
    throw new Error('cannot read the shape of past_key_0 (onnxruntime-node >= 1.21 reports input metadata)');
  return { layers, heads: meta.shape[1], headSize: meta.shape[3] };
}

function emptyCache(ort, layout) {
  const past = {};
  for (let l = 0; l < layout.layers; ++l)
    for (const kind of ['key', 'value'])
      past[`past_${kind}_${l}`] = new ort.Tensor('float32', new Float32Array(0), [1, layout.heads, 0, layout.headSize]);
  return past;
}

// One run of a KV-cache model on `tokens` after `past`: {logits, past (the presents, renamed)}.
async function cachedRun(ort, session, layout, tokens, past) {
  const ids = BigInt64Array.from(tokens.map((t) => BigInt(t)));
  const out = await session.run({ tokens: new ort.Tensor('int64', ids, [1, tokens.length]), ...past });
  const next = {};
  for (let l = 0; l < layout.layers; ++l)
    for (const kind of ['key', 'value']) next[`past_${kind}_${l}`] = out[`present_${kind}_${l}`];
  return { logits: out.logits, past: next };
}

function lastRow(logits) {
  const [, T, vocab] = logits.dims;
  return logits.data.subarray((T - 1) * vocab, T * vocab);
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const modules = process.env.LOWBIT_ORT_NODE_MODULES || path.join(__dirname, '..', '..', 'third_party', 'node', 'node_modules');
  let ort;
  try {
    ort = require(path.join(modules, 'onnxruntime-node'));
  } catch (e) {
    usage(`onnxruntime-node not found under ${modules}; run scripts/setup.sh (${e.message.split('\n')[0]})`);
  }
  const options = { intraOpNumThreads: args.threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' };
  if (args.optimized) options.optimizedModelFilePath = args.optimized;
  const session = await ort.InferenceSession.create(args.positional[0], options);

  const layout = cacheLayout(session);
  const median = (v) => v.sort((a, b) => a - b)[Math.floor(v.length / 2)];

  if (args.bench && layout) {
    const [promptLength, decodeSteps] = args.bench;
    const prompt = Array.from({ length: promptLength }, (_, i) => (i * 37 + 11) % 256);
    const prefill = [], decode = [];
    for (let it = 0; it <= args.iterations; ++it) {  // iteration 0: warm-up
      let t0 = process.hrtime.bigint();
      let r = await cachedRun(ort, session, layout, prompt, emptyCache(ort, layout));
      const tPrefill = Number(process.hrtime.bigint() - t0) / 1e9;
      t0 = process.hrtime.bigint();
      for (let s = 0; s < decodeSteps; ++s) r = await cachedRun(ort, session, layout, [argmax(lastRow(r.logits))], r.past);
      const tDecode = Number(process.hrtime.bigint() - t0) / 1e9;
      if (it > 0) {
        prefill.push(promptLength / tPrefill);
        decode.push(decodeSteps / tDecode);
      }
    }
    process.stdout.write(JSON.stringify({ model: args.positional[0], threads: args.threads, prompt_tokens: promptLength,
      decode_tokens: decodeSteps, prefill_tokens_per_s: median(prefill), decode_tokens_per_s: median(decode),
      decode: 'KV cache (one token per run)' }) + '\n');
    return;
  }

  if (args.bench) {
    const [promptLength, decodeSteps] = args.bench;
    const prompt = Array.from({ length: promptLength }, (_, i) => (i * 37 + 11) % 256);
    const prefill = [], decode = [];
    for (let it = 0; it <= args.iterations; ++it) {  // iteration 0: warm-up
      const text = prompt.slice();
      let t0 = process.hrtime.bigint();
      let logits = await logitsOf(ort, session, text);
      const tPrefill = Number(process.hrtime.bigint() - t0) / 1e9;
      const vocab = logits.dims[2];
      t0 = process.hrtime.bigint();
      for (let s = 0; s < decodeSteps; ++s) {
        text.push(argmax(logits.data.subarray((text.length - 1) * vocab, text.length * vocab)));
        logits = await logitsOf(ort, session, text);
      }
      const tDecode = Number(process.hrtime.bigint() - t0) / 1e9;
      if (it > 0) {
        prefill.push(promptLength / tPrefill);
        decode.push(decodeSteps / tDecode);
      }
    }
    process.stdout.write(JSON.stringify({ model: args.positional[0], threads: args.threads, prompt_tokens: promptLength,
      decode_tokens: decodeSteps, prefill_tokens_per_s: median(prefill), decode_tokens_per_s: median(decode),
      decode: 'full recompute (no KV cache)' }) + '\n');
    return;
  }

  const generated = [];
  const lastLogits = [];
  for (const prompt of args.prompts) {
    if (layout) {
      const tokens = [], rows = [];
      let r = null;
      for (let s = 0; s < args.steps; ++s) {
        r = await cachedRun(ort, session, layout, s === 0 ? prompt : [tokens[s - 1]], s === 0 ? emptyCache(ort, layout) : r.past);
        rows.push(r.logits.data);
        tokens.push(argmax(lastRow(r.logits)));
      }
      generated.push(tokens);
      const all = new Float32Array(rows.reduce((n, v) => n + v.length, 0));
      let offset = 0;
      for (const v of rows) {
        all.set(v, offset);
        offset += v.length;
      }
      lastLogits.push(all);
      continue;
    }
    const text = prompt.slice();
    const tokens = [];
    let logits = null;
    for (let s = 0; s < args.steps; ++s) {
      logits = await logitsOf(ort, session, text);
      const vocab = logits.dims[2];
      const next = argmax(logits.data.subarray((text.length - 1) * vocab, text.length * vocab));
      tokens.push(next);
      text.push(next);
    }
    generated.push(tokens);
    if (logits) lastLogits.push(Float32Array.from(logits.data));
  }
  if (args.tokens) fs.writeFileSync(args.tokens, JSON.stringify(generated) + '\n');
  if (args.logits) {
    const total = lastLogits.reduce((n, l) => n + l.length, 0);
    const buffer = Buffer.alloc(4 * total);
    let offset = 0;
    for (const l of lastLogits) {
      Buffer.from(l.buffer, l.byteOffset, l.byteLength).copy(buffer, offset);
      offset += l.byteLength;
    }
    fs.writeFileSync(args.logits, buffer);
  }
  process.stdout.write(JSON.stringify({ prompts: args.prompts.length, steps: args.steps,
    decode: layout ? 'KV cache' : 'full recompute' }) + '\n');
}

main().catch((e) => {
  process.stderr.write(`ort_generate.js: ${e.message}\n`);
  process.exit(1);
});
