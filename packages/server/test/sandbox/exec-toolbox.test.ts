/**
 * Every tool docs/protocol.md promises runs inside the sandbox and does real work
 * (an agent converting a PDF, probing audio, resizing an image must just
 * work). On a host without some of them (`npm test` installs them as root; otherwise it prints the apt
 * command), exactly the tests that need a missing tool are skipped, and their names say so.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SKIP_REASON, bwrapPath, createFixture, type Fixture } from './exec-fixture.js';

const TOOLS = [
  'jq',
  'awk',
  'sed',
  'grep',
  'file',
  'sha256sum',
  'md5sum',
  'xxd',
  'base64',
  'gzip',
  'tar',
  'python3',
  'pdftotext',
  'pdfinfo',
  'ffmpeg',
  'ffprobe',
  'convert',
  'identify',
  'exiftool',
];

/** The sandbox sees the host's /usr: a tool missing there is missing inside. */
const missingOnHost = new Set(
  TOOLS.filter((t) => !['/usr/local/bin', '/usr/bin', '/bin'].some((d) => existsSync(join(d, t)))),
);

/** A test that runs `tools`: skipped, with a notice in its name, when the host lacks one of them. */
function needs(tools: string[]): [skip: boolean, notice: string] {
  const missing = tools.filter((t) => missingOnHost.has(t));
  if (missing.length === 0) return [false, ''];
  return [true, ` — SKIPPED: ${missing.join(', ')} not installed (as root: npm run setup:toolbox)`];
}

function itWith(tools: string[], name: string, fn: () => Promise<void>): void {
  const [skip, notice] = needs(tools);
  it.skipIf(skip)(name + notice, fn);
}

/** Writes a one-page PDF with a line of Helvetica text, computing the xref offsets. */
const MAKE_PDF = String.raw`
import sys
text = sys.argv[2].encode()
stream = b"BT /F1 18 Tf 20 100 Td (" + text + b") Tj ET"
objs = [
    b"<< /Type /Catalog /Pages 2 0 R >>",
    b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
    b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 300 144] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
    b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
    b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
]
out = bytearray(b"%PDF-1.4\n")
offsets = []
for i, body in enumerate(objs, 1):
    offsets.append(len(out))
    out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
xref = len(out)
out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
for off in offsets:
    out += b"%010d 00000 n \n" % off
out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
open(sys.argv[1], "wb").write(out)
`;

describe.skipIf(!bwrapPath)(`exec toolbox${bwrapPath ? '' : ` (${SKIP_REASON})`}`, () => {
  let f: Fixture;
  beforeAll(async () => {
    f = await createFixture({ timeoutMs: 60_000 });
  });
  afterAll(async () => {
    await f?.cleanup();
  });

  itWith(TOOLS, 'has every tool docs/protocol.md lists on PATH', async () => {
    const r = await f.run(TOOLS.map((t) => `command -v ${t} >/dev/null || echo "missing: ${t}"`).join('; '));
    expect(r.stdout, 'install the toolbox with `npm run setup:toolbox`').toBe('');
  });

  itWith(['jq', 'awk', 'sed', 'grep'], 'text tools: jq, awk, sed, grep', async () => {
    const r = await f.run(
      `echo '{"items":[{"n":"a","v":2},{"n":"b","v":3}]}' | jq -c '[.items[].v] | add'; ` +
        `printf 'x 1\\ny 2\\n' | awk '{s += $2} END {print s}'; ` +
        `echo hello | sed 's/l/L/g'; ` +
        `printf 'one\\ntwo\\nthree\\n' | grep -c o`,
    );
    expect(r).toMatchObject({ exitCode: 0, stdout: '5\n3\nheLLo\n2\n', stderr: '' });
  });

  itWith(['sha256sum', 'md5sum', 'xxd', 'base64'], 'hashes and encodings: sha256sum, md5sum, xxd, base64', async () => {
    const r = await f.run(
      "printf abc | sha256sum | cut -d' ' -f1; printf abc | md5sum | cut -d' ' -f1; printf abc | xxd -p; printf abc | base64; echo YWJj | base64 -d; echo",
    );
    expect(r.stdout).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n900150983cd24fb0d6963f7d28e17f72\n616263\nYWJj\nabc\n',
    );
  });

  itWith(['gzip', 'tar', 'file'], 'archives: gzip and tar', async () => {
    const r = await f.run(
      'cd workspace && mkdir -p arch/sub && echo one > arch/a.txt && echo two > arch/sub/b.txt && tar czf arch.tgz arch && ' +
        'tar tzf arch.tgz | sort && echo zipped | gzip > z.gz && gzip -dc z.gz && file -b --mime-type arch.tgz',
    );
    expect(r.stdout).toBe('arch/\narch/a.txt\narch/sub/\narch/sub/b.txt\nzipped\napplication/gzip\n');
  });

  itWith(['python3'], 'python3 runs scripts from the workspace', async () => {
    const r = await f.run(
      `python3 -c 'import json, sys, sqlite3; print(json.dumps({"py": sys.version_info[0], "sqlite": bool(sqlite3.sqlite_version)}))'`,
    );
    expect(r).toMatchObject({ exitCode: 0, stdout: '{"py": 3, "sqlite": true}\n' });
  });

  itWith(['python3', 'file', 'pdftotext', 'pdfinfo'], 'converts a PDF to text (pdftotext, pdfinfo)', async () => {
    writeFileSync(join(f.nsA, 'mkpdf.py'), MAKE_PDF);
    const r = await f.run(
      "python3 workspace/mkpdf.py workspace/doc.pdf 'Hello Trove PDF' && file -b --mime-type workspace/doc.pdf && " +
        "pdftotext workspace/doc.pdf - | tr -s '\\n\\f' '\\n' && pdfinfo workspace/doc.pdf | grep -E '^(Pages|Page size):' | tr -s ' '",
    );
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('application/pdf\nHello Trove PDF\nPages: 1\nPage size: 300 x 144 pts\n');
  });

  itWith(['ffmpeg', 'ffprobe', 'jq'], 'makes audio with ffmpeg and probes it with ffprobe | jq', async () => {
    const r = await f.run(
      'ffmpeg -hide_banner -loglevel error -f lavfi -i sine=frequency=440:duration=1 -ac 1 -ar 16000 workspace/tone.wav && ' +
        "ffprobe -v quiet -print_format json -show_format -show_streams workspace/tone.wav | jq -r '.streams[0] | [.codec_type, .sample_rate, .channels, (.duration | tonumber | round)] | @tsv'",
    );
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('audio\t16000\t1\t1\n');
  });

  itWith(
    ['convert', 'identify', 'exiftool', 'file'],
    'resizes an image with ImageMagick and reads it back with identify and exiftool',
    async () => {
      const r = await f.run(
        'convert -size 64x48 xc:red workspace/red.png && convert workspace/red.png -resize 50% workspace/small.jpg && ' +
          "identify -format '%w %h %m\\n' workspace/small.jpg && exiftool -s -s -s -ImageWidth -ImageHeight workspace/red.png && " +
          'file -b --mime-type workspace/red.png',
      );
      expect(r.stderr).toBe('');
      expect(r.stdout).toBe('32 24 JPEG\n64\n48\nimage/png\n');
    },
  );
});
