/**
 * Files benchmark (`npm run bench -- files`), two parts:
 *
 * (a) Image processing, in this process: a 12-megapixel JPEG (4000 × 3000, gradient under noise,
 *     quality 90) into `DEFAULT_IMAGE_VARIANTS` through `processImage`, against raw sharp on the
 *     same image in the same run, alternated `BENCH_SAMPLES` times (default 3), `BENCH_IMAGES`
 *     images per sample (default 2), one image at a time. Two baselines:
 *     - "variants only": `sharp(input).rotate()` `clone()`d once per variant × format, the same
 *       encoder settings, nothing else (the issue's target: processImage ≥ 0.8× its speed);
 *     - "same outputs": the same clone()d pipeline also re-encoding the original and making the
 *       blurhash pixels, i.e. what processImage produces, minus its checks, written the obvious
 *       way (one decode per output) rather than processImage's single decode.
 *     Images/s per core = images / CPU seconds of the process (libvips threads included).
 * (b) Uploads: `POST /api/v1/files` (local driver) of a ~5 MB JPEG against a server child
 *     (`files-server.ts`) on a scratch database `gw_bench_files`: a warm-up one at a time, then two
 *     rounds of `BENCH_UPLOADS` uploads (default 200), `BENCH_UPLOAD_CONCURRENCY` (default 20) at
 *     once; per phase the server's RSS before and its peak (sampled every 10 ms), CPU per upload.
 *     Needs the files module (issue 15): skipped, and said so, when the server cannot start.
 *
 * Targets: processImage ≥ 0.8 × raw sharp; server RSS growth < 100 MB during the uploads.
 * `BENCH_FILES_PARTS=processing` (or `uploads`) runs one part. Writes bench/results/files.json.
 */
import { encode as encodeBlurhash } from 'blurhash';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import sharp from 'sharp';
import type { Sharp } from 'sharp';
import { photoJpeg } from './files-data.ts';
import { ServerChild, admin, serverUrl } from './lib.ts';
import {
  DEFAULT_IMAGE_LIMITS,
  DEFAULT_IMAGE_VARIANTS,
  processImage,
} from '../src/platform/files/images.ts';
import type { ImageFormat } from '../src/platform/files/images.ts';
import { ORIGINAL_ENCODING, VARIANT_ENCODING } from '../src/platform/files/image-formats.ts';

const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 3);
const IMAGES = Number(process.env.BENCH_IMAGES ?? 2);
const UPLOADS = Number(process.env.BENCH_UPLOADS ?? 200);
const CONCURRENCY = Number(process.env.BENCH_UPLOAD_CONCURRENCY ?? 20);
const DATABASE = 'gw_bench_files';
const PROCESSING_TARGET = 0.8;
const RSS_TARGET_MB = 100;
const MB = 1024 * 1024;
/** About 5 MB at quality 90 with this noise. */
const SIZE = { width: 3440, height: 2580 } as const;

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] ?? NaN) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

function encodeAs(image: Sharp, format: ImageFormat): Sharp {
  return image.toFormat(format, VARIANT_ENCODING[format]);
}

/** Raw sharp, the variants alone: what the target compares against. */
async function sharpVariants(input: Buffer): Promise<void> {
  const base = sharp(input).rotate();
  for (const v of DEFAULT_IMAGE_VARIANTS) {
    for (const f of v.formats) {
      await encodeAs(
        base.clone().resize({ width: v.width, withoutEnlargement: true }),
        f,
      ).toBuffer();
    }
  }
}

/** Raw sharp, processImage's outputs (original, variants, blurhash), one decode per output. */
async function sharpSameOutputs(input: Buffer): Promise<void> {
  const base = sharp(input).rotate().toColourspace('srgb');
  await base.clone().jpeg(ORIGINAL_ENCODING.jpeg).toBuffer();
  for (const v of DEFAULT_IMAGE_VARIANTS) {
    for (const f of v.formats) {
      await encodeAs(
        base.clone().resize({ width: v.width, withoutEnlargement: true }),
        f,
      ).toBuffer();
    }
  }
  const { data, info } = await base
    .clone()
    .resize(32, 32, { fit: 'inside' })
    .ensureAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  encodeBlurhash(new Uint8ClampedArray(data), info.width, info.height, 4, 3);
}

async function viaProcessImage(input: Buffer): Promise<void> {
  await processImage(input, { variants: DEFAULT_IMAGE_VARIANTS, limits: DEFAULT_IMAGE_LIMITS });
}

const METHODS = {
  processImage: viaProcessImage,
  'sharp, variants only': sharpVariants,
  'sharp, same outputs (clone per output)': sharpSameOutputs,
} as const;
type Method = keyof typeof METHODS;

interface Timing {
  wallMs: number[];
  cpuMs: number[];
  /** This process's peak RSS during the sample, above its RSS when the sample started. */
  peakRssGrowthMb: number[];
}

async function processing(): Promise<{
  bytes: number;
  timings: Record<Method, Timing>;
  lines: string[];
  ratios: Record<string, number>;
}> {
  const input = await photoJpeg(4000, 3000, 90);
  const names = Object.keys(METHODS) as Method[];
  const timings: Record<Method, Timing> = {
    processImage: { wallMs: [], cpuMs: [], peakRssGrowthMb: [] },
    'sharp, variants only': { wallMs: [], cpuMs: [], peakRssGrowthMb: [] },
    'sharp, same outputs (clone per output)': { wallMs: [], cpuMs: [], peakRssGrowthMb: [] },
  };
  for (const name of names) await METHODS[name](input); // warm-up: libvips and the encoders
  for (let sample = 0; sample < SAMPLES; sample++) {
    for (const name of sample % 2 === 0 ? names : [...names].reverse()) {
      const rss = process.memoryUsage.rss();
      let peak = rss;
      const sampler = setInterval(() => {
        peak = Math.max(peak, process.memoryUsage.rss());
      }, 10);
      const cpu = process.cpuUsage();
      const started = performance.now();
      for (let i = 0; i < IMAGES; i++) await METHODS[name](input);
      const used = process.cpuUsage(cpu);
      clearInterval(sampler);
      timings[name].peakRssGrowthMb.push((peak - rss) / MB);
      timings[name].wallMs.push((performance.now() - started) / IMAGES);
      timings[name].cpuMs.push((used.user + used.system) / 1000 / IMAGES);
    }
  }
  const perCore = (n: Method) => 1000 / median(timings[n].cpuMs);
  const perSecond = (n: Method) => 1000 / median(timings[n].wallMs);
  const ratios = {
    vsVariantsCpu: perCore('processImage') / perCore('sharp, variants only'),
    vsVariantsWall: perSecond('processImage') / perSecond('sharp, variants only'),
    vsSameCpu: perCore('processImage') / perCore('sharp, same outputs (clone per output)'),
    vsSameWall: perSecond('processImage') / perSecond('sharp, same outputs (clone per output)'),
  };
  const lines = [
    `12-megapixel JPEG (4000 × 3000, quality 90, ${(input.length / MB).toFixed(1)} MB) into ${DEFAULT_IMAGE_VARIANTS.map((v) => `${v.name} (${v.formats.join(', ')})`).join(' and ')}; median of ${String(SAMPLES)} samples of ${String(IMAGES)} images; sharp.concurrency() = ${String(sharp.concurrency())}.\n`,
    '| Method | Images/s per core (CPU) | Images/s (wall) | CPU ms/image | Wall ms/image | Peak RSS growth (MB) |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    ...names.map(
      (n) =>
        `| ${n} | ${perCore(n).toFixed(2)} | ${perSecond(n).toFixed(2)} | ${median(timings[n].cpuMs).toFixed(0)} | ${median(timings[n].wallMs).toFixed(0)} | ${Math.max(...timings[n].peakRssGrowthMb).toFixed(0)} |`,
    ),
    '',
    `processImage / sharp variants only: ${ratios.vsVariantsCpu.toFixed(2)}× per core, ${ratios.vsVariantsWall.toFixed(2)}× wall (target ≥ ${String(PROCESSING_TARGET)}: ${ratios.vsVariantsCpu >= PROCESSING_TARGET ? 'met' : 'missed'}).`,
    `processImage / sharp same outputs: ${ratios.vsSameCpu.toFixed(2)}× per core, ${ratios.vsSameWall.toFixed(2)}× wall.`,
    '',
  ];
  return { bytes: input.length, timings, lines, ratios };
}

interface ServerReport {
  cpuMicros: number;
  rss: number;
  /** Highest RSS sampled since the previous report. */
  peakRss: number;
  /** The kernel's lifetime peak (getrusage maxrss). */
  maxRss: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
}

interface Phase {
  name: string;
  uploads: number;
  concurrency: number;
  seconds: number;
  p50: number;
  p99: number;
  cpuMsPerUpload: number;
  rssBefore: number;
  peakRss: number;
  maxRssAfter: number;
  growthMb: number;
  after: ServerReport;
}

async function uploads(): Promise<{ lines: string[]; result: Record<string, unknown> } | null> {
  const script = new URL('./files-server.ts', import.meta.url);
  await admin(`drop database if exists ${DATABASE}`);
  await admin(`create database ${DATABASE}`);
  const url = new URL(serverUrl());
  url.pathname = `/${DATABASE}`;
  let server: ServerChild;
  try {
    server = await ServerChild.start(script, 'groundwork', [url.toString()]);
  } catch (error) {
    await admin(`drop database if exists ${DATABASE}`);
    const reason = error instanceof Error ? error.message : String(error);
    return { lines: [`Uploads: not run (${reason}).`, ''], result: { skipped: reason } };
  }
  const base = `http://127.0.0.1:${String(server.port)}`;
  try {
    const jpeg = await photoJpeg(SIZE.width, SIZE.height, 90);
    const token = await signIn(base);
    const upload = async (): Promise<void> => {
      const form = new FormData();
      form.append('file', new Blob([jpeg], { type: 'image/jpeg' }), 'photo.jpg');
      const res = await fetch(`${base}/api/v1/files`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}` },
        body: form,
      });
      const text = await res.text();
      if (res.status !== 201)
        throw new Error(`upload: ${String(res.status)} ${text.slice(0, 300)}`);
    };
    const listening = await server.report<ServerReport>();
    // Warm-up one at a time, then the same load twice: a second round that grows again would
    // be a leak, one that stays level is the working set.
    const plan = [
      { name: 'warm-up, 1 at a time', uploads: CONCURRENCY, concurrency: 1 },
      {
        name: `round 1, ${String(CONCURRENCY)} at once`,
        uploads: UPLOADS,
        concurrency: CONCURRENCY,
      },
      {
        name: `round 2, ${String(CONCURRENCY)} at once`,
        uploads: UPLOADS,
        concurrency: CONCURRENCY,
      },
    ];
    const phases: Phase[] = [];
    let before = listening;
    for (const step of plan) {
      let next = 0;
      const latencies: number[] = [];
      const started = performance.now();
      await Promise.all(
        Array.from({ length: step.concurrency }, async () => {
          while (next++ < step.uploads) {
            const t = performance.now();
            await upload();
            latencies.push(performance.now() - t);
          }
        }),
      );
      const seconds = (performance.now() - started) / 1000;
      const after = await server.report<ServerReport>();
      latencies.sort((a, b) => a - b);
      const p = (q: number) => latencies[Math.floor(q * (latencies.length - 1))] ?? NaN;
      phases.push({
        ...step,
        seconds,
        p50: p(0.5),
        p99: p(0.99),
        cpuMsPerUpload: (after.cpuMicros - before.cpuMicros) / 1000 / step.uploads,
        rssBefore: before.rss,
        peakRss: after.peakRss,
        maxRssAfter: after.maxRss,
        growthMb: (after.peakRss - before.rss) / MB,
        after,
      });
      before = after;
    }
    const loaded = phases.slice(1);
    const worst = Math.max(...loaded.map((ph) => ph.growthMb));
    const sinceListening = (Math.max(...phases.map((ph) => ph.peakRss)) - listening.rss) / MB;
    const last = phases[phases.length - 1]?.after ?? listening;
    const mb = (n: number) => (n / MB).toFixed(0);
    const lines = [
      `Uploads of a ${(jpeg.length / MB).toFixed(1)} MB JPEG (${String(SIZE.width)} × ${String(SIZE.height)}), multipart to \`POST /api/v1/files\`, local driver; server RSS ${mb(listening.rss)} MB once listening (startup peak ${mb(listening.maxRss)} MB).\n`,
      '| Phase | Uploads | Uploads/s | MB/s | p50 (ms) | p99 (ms) | Server CPU ms/upload | RSS before (MB) | Peak RSS (MB) | Growth (MB) |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
      ...phases.map((ph) => {
        const rate = ph.uploads / ph.seconds;
        return `| ${ph.name} | ${String(ph.uploads)} | ${rate.toFixed(1)} | ${((rate * jpeg.length) / MB).toFixed(0)} | ${ph.p50.toFixed(0)} | ${ph.p99.toFixed(0)} | ${ph.cpuMsPerUpload.toFixed(1)} | ${mb(ph.rssBefore)} | ${mb(ph.peakRss)} | ${ph.growthMb.toFixed(0)} |`;
      }),
      '',
      `Server RSS growth under ${String(CONCURRENCY)} concurrent uploads: at most ${worst.toFixed(0)} MB per round (target < ${String(RSS_TARGET_MB)}: ${worst < RSS_TARGET_MB ? 'met' : 'missed'}); ${sinceListening.toFixed(0)} MB from listening to the highest sampled peak, warm-up included; lifetime peak (getrusage maxrss) ${mb(last.maxRss)} MB. After the last round: heap used ${mb(last.heapUsed)} MB, external ${mb(last.external)} MB (array buffers ${mb(last.arrayBuffers)} MB).`,
      '',
    ];
    return {
      lines,
      result: {
        bytes: jpeg.length,
        listening,
        phases,
        worstRoundGrowthMb: worst,
        growthSinceListeningMb: sinceListening,
      },
    };
  } finally {
    await server.stop();
    await admin(`drop database if exists ${DATABASE}`);
  }
}

async function signIn(base: string): Promise<string> {
  const { FILES_BENCH_LOGIN, FILES_BENCH_PASSWORD } = await import('./files-server.ts');
  const res = await fetch(`${base}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'user-agent': 'groundwork-bench/1' },
    body: JSON.stringify({ login: FILES_BENCH_LOGIN, password: FILES_BENCH_PASSWORD }),
  });
  if (res.status !== 200) throw new Error(`sign-in: ${String(res.status)} ${await res.text()}`);
  return ((await res.json()) as { accessToken: string }).accessToken;
}

export async function main(): Promise<void> {
  const which = process.env.BENCH_FILES_PARTS ?? 'processing,uploads';
  const load = loadavg().map((l) => l.toFixed(2));
  const header = `\n## Files (${process.version}, ${String(cpus().length)} cores, ${new Date().toISOString()}, load average ${load.join(' ')})\n`;
  process.stdout.write(`${header}\n`);
  const proc = which.includes('processing') ? await processing() : null;
  if (proc) process.stdout.write(`${proc.lines.join('\n')}\n`);
  const up = which.includes('uploads') ? await uploads() : null;
  if (up) process.stdout.write(`${up.lines.join('\n')}\n`);
  const dir = new URL('./results/', import.meta.url);
  await mkdir(dir, { recursive: true });
  await writeFile(
    new URL('files.json', dir),
    `${JSON.stringify(
      {
        date: new Date().toISOString(),
        node: process.version,
        cores: cpus().length,
        loadavg: loadavg(),
        sharpConcurrency: sharp.concurrency(),
        processing: proc && { bytes: proc.bytes, timings: proc.timings, ratios: proc.ratios },
        uploads: up?.result ?? null,
      },
      null,
      2,
    )}\n`,
  );
}
