// fal's own JS client (@fal-ai/client) against batchgen's emulator: a 100 MiB file uploaded
// (the client's multipart path, used above 90 MiB), then a submit carrying its URL, followed
// to its result. The client's hosts are fixed (rest.fal.ai, queue.fal.run), so its `fetch`
// option sends them to the emulator: nothing leaves this machine.
//
//   BATCHGEN_BASE=http://127.0.0.1:8787 BATCHGEN_KEY=... node upload.mjs
import { createFalClient } from "@fal-ai/client";

const base = process.env.BATCHGEN_BASE;
const key = process.env.BATCHGEN_KEY;
const MIB = 1024 * 1024;
const fal = createFalClient({
  credentials: key,
  fetch: (url, init) =>
    fetch(String(url).replace(/^https:\/\/(rest\.fal\.ai|queue\.fal\.run)/, base), init),
});

const started = Date.now();
const bytes = new Uint8Array(100 * MIB);
bytes.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52]);
for (let i = 16; i < bytes.length; i += 4096) bytes[i] = i % 251; // not all zeros
const blob = new Blob([bytes], { type: "image/png" });
const digest = Buffer.from(await crypto.subtle.digest("SHA-256", bytes)).toString("hex");
const url = await fal.storage.upload(blob);
const uploaded = Date.now();
console.log(`uploaded ${blob.size} bytes (sha256 ${digest.slice(0, 16)}...) in ${(uploaded - started) / 1000} s: ${url}`);

const endpoint = "fal-ai/kling-video/v2.5-turbo/pro/image-to-video";
const result = await fal.subscribe(endpoint, {
  input: { prompt: "a lighthouse at dusk", image_url: url },
  pollInterval: 200,
});
console.log(`submitted with its URL: request ${result.requestId}, video ${result.data.video.url}`);

const stats = await (await fetch(`${base}/_mock/stats`)).json();
const entry = stats.uploads[digest];
console.log(`the emulator holds it: ${JSON.stringify(entry)}`);
if (!entry || entry.size !== blob.size || entry.count !== 1) process.exit(1);
