#!/usr/bin/env node
// Runs an ONNX model in ONNX Runtime (the onnxruntime-node binding that scripts/setup.sh installs
// into third_party/node) on images, and writes the logits and / or the predicted classes.
//
// usage: node tests/export/ort_run.js MODEL.onnx INPUT [--logits FILE] [--predictions FILE]
//            [--count N] [--batch B] [--threads T] [--bench BATCHES --iterations K]
//   INPUT   raw float32 little-endian [N, 1, 28, 28] (name ending in .f32), or an IDX image file
//           (.gz or plain, e.g. t10k-images-idx3-ubyte.gz), read as pixel / 255
//   --logits FILE       raw float32 [N, classes]
//   --predictions FILE  one class per line (argmax, ties to the lowest index, as lowbit)
//   --labels IDX        an IDX label file: also print the accuracy
//   --shape C,H,W       the per-example input shape of a .f32 INPUT (default 1,28,28; any rank)
//   --bench 1,256       instead: median latency per batch size (JSON on stdout); timing only
// The module is taken from $LOWBIT_ORT_NODE_MODULES or third_party/node/node_modules.
'use strict';
const fs = require('fs');
const path = require('path');
const zlib = require('zlib');

function usage(message) {
  process.stderr.write(`ort_run.js: ${message}\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const args = { positional: [], batch: 256, threads: 2, count: -1, iterations: 20, shape: [1, 28, 28] };
  for (let i = 0; i < argv.length; ++i) {
    const a = argv[i];
    const value = () => (i + 1 < argv.length ? argv[++i] : usage(`${a} needs a value`));
    if (a === '--logits') args.logits = value();
    else if (a === '--predictions') args.predictions = value();
    else if (a === '--labels') args.labels = value();
    else if (a === '--count') args.count = Number(value());
    else if (a === '--batch') args.batch = Number(value());
    else if (a === '--threads') args.threads = Number(value());
    else if (a === '--bench') args.bench = value().split(',').map(Number);
    else if (a === '--iterations') args.iterations = Number(value());
    else if (a === '--shape') args.shape = value().split(',').map(Number);
    else if (a.startsWith('--')) usage(`unknown flag ${a}`);
    else args.positional.push(a);
  }
  if (args.positional.length !== 2) usage('expected MODEL.onnx and INPUT');
  return args;
}

// Float examples [N, ...shape] from a raw float32 file, or images [N, 1, rows, cols] from an IDX file.
function readImages(file, shape) {
  let bytes = fs.readFileSync(file);
  if (file.endsWith('.f32')) {
    const item = shape.reduce((a, b) => a * b, 1);
    if (bytes.length % (4 * item) !== 0) usage(`'${file}' holds ${bytes.length} bytes, not a multiple of ${item} float32`);
    const data = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
    return { data, count: data.length / item, shape };
  }
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) bytes = zlib.gunzipSync(bytes);
  if (bytes.length < 16 || bytes.readUInt32BE(0) !== 2051) usage(`'${file}' is not an IDX image file (magic 2051)`);
  const count = bytes.readUInt32BE(4), rows = bytes.readUInt32BE(8), cols = bytes.readUInt32BE(12);
  if (bytes.length !== 16 + count * rows * cols) usage(`'${file}' is truncated`);
  const data = new Float32Array(count * rows * cols);
  for (let i = 0; i < data.length; ++i) data[i] = bytes[16 + i] / 255;  // as lowbit: pixel / 255.0f
  return { data, count, shape: [1, rows, cols] };
}

function readLabels(file) {
  let bytes = fs.readFileSync(file);
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) bytes = zlib.gunzipSync(bytes);
  if (bytes.length < 8 || bytes.readUInt32BE(0) !== 2049) usage(`'${file}' is not an IDX label file (magic 2049)`);
  return bytes.subarray(8);
}

function argmax(row) {
  let best = 0;
  for (let c = 1; c < row.length; ++c) if (row[c] > row[best]) best = c;
  return best;
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
  const [modelFile, inputFile] = args.positional;
  const session = await ort.InferenceSession.create(modelFile, {
    intraOpNumThreads: args.threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all',
  });
  const images = readImages(inputFile, args.shape);
  const count = args.count >= 0 ? Math.min(args.count, images.count) : images.count;
  const item = images.shape.reduce((a, b) => a * b, 1);
  const input = session.inputNames[0];
  const output = session.outputNames[0];

  if (args.bench) {
    const results = [];
    for (const batch of args.bench) {
      const x = new Float32Array(batch * item);
      for (let i = 0; i < x.length; ++i) x[i] = images.data[i % (count * item)];
      const feeds = { [input]: new ort.Tensor('float32', x, [batch, ...images.shape]) };
      for (let i = 0; i < 3; ++i) await session.run(feeds);  // warm-up
      const times = [];
      for (let i = 0; i < args.iterations; ++i) {
        const t0 = process.hrtime.bigint();
        await session.run(feeds);
        times.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
      times.sort((a, b) => a - b);
      const median = times[Math.floor(times.length / 2)];
      results.push({ batch, threads: args.threads, ms_median: median, items_per_s: (1000 * batch) / median });
    }
    process.stdout.write(JSON.stringify({ model: modelFile, results }) + '\n');
    return;
  }

  let classes = 0;
  const logits = [];
  const predictions = [];
  for (let start = 0; start < count; start += args.batch) {
    const n = Math.min(args.batch, count - start);
    const x = images.data.subarray(start * item, (start + n) * item);
    const result = await session.run({ [input]: new ort.Tensor('float32', x, [n, ...images.shape]) });
    const y = result[output].data;
    classes = y.length / n;
    for (let i = 0; i < n; ++i) {
      const row = y.subarray(i * classes, (i + 1) * classes);
      predictions.push(argmax(row));
      logits.push(Float32Array.from(row));
    }
  }
  if (args.logits) {
    const buffer = Buffer.alloc(4 * classes * logits.length);
    logits.forEach((row, i) => row.forEach((v, c) => buffer.writeFloatLE(v, 4 * (i * classes + c))));
    fs.writeFileSync(args.logits, buffer);
  }
  if (args.predictions) fs.writeFileSync(args.predictions, predictions.join('\n') + '\n');
  const summary = { count, classes };
  if (args.labels) {
    const labels = readLabels(args.labels);
    if (labels.length < count) usage(`'${args.labels}' has ${labels.length} labels for ${count} images`);
    summary.accuracy = predictions.filter((p, i) => p === labels[i]).length / count;
  }
  process.stdout.write(JSON.stringify(summary) + '\n');
}

main().catch((e) => {
  process.stderr.write(`ort_run.js: ${e.message}\n`);
  process.exit(1);
});
