import {
  layerExpectations,
  layerMismatches,
  parseRegularFiles,
  rootMountIds,
  storedSizes,
} from '../criu/files.js';
import { MigrationError } from '../errors.js';
import { describeHost } from '../host/host.js';
import { runChecked, shellQuote } from '../host/shell.js';
import type { RunContext } from '../phases/context.js';
import type { CheckpointSettings } from '../settings.js';
import type { OpenFileCheck } from '../state/store.js';

const MARK = '\u001e';

/**
 * Proves a checkpoint's layer restorable before the run calls it complete:
 * the regular files the processes hold open on the container's root file
 * system, as CRIU recorded them (files.img, mountpoints-*.img), against the
 * sizes in the layer archives as stored. A file CRIU sized must match to the
 * byte (CRIU refuses the restore otherwise: "has bad size"); an append-only
 * file must hold at least what its descriptor wrote. Returns what was checked.
 */
export async function proveLayer(
  ctx: RunContext<CheckpointSettings>,
  imagesDir: string,
  partial: string,
  archives: readonly string[],
): Promise<OpenFileCheck[]> {
  const images = await runChecked(
    ctx.source,
    `cd ${shellQuote([imagesDir])} && base64 -w0 files.img && printf '\\n' && for f in mountpoints-*.img; do [ -f "$f" ] && base64 -w0 "$f" && printf '\\n'; done; true`,
    { step: 'prove', what: "reading CRIU's record of the open files" },
  );
  const [filesText = '', ...mountTexts] = images.stdout.split('\n').filter((line) => line.trim() !== '');
  const open = parseRegularFiles(Buffer.from(filesText, 'base64'));
  const roots = mountTexts.flatMap((text) => rootMountIds(Buffer.from(text, 'base64')));
  const expected = layerExpectations(open, roots);
  if (expected.length === 0) return [];

  const listing = await runChecked(
    ctx.target,
    archives
      .map(
        (archive) =>
          `tar --numeric-owner -tvf ${shellQuote([`${partial}/${archive}`])} && printf '${MARK}\\n'`,
      )
      .join(' && '),
    { step: 'prove', what: 'listing the stored layer', options: { timeoutMs: 30 * 60_000 } },
  );
  const stored = storedSizes(listing.stdout.split(`${MARK}\n`));
  const checked: OpenFileCheck[] = expected.map((file) => {
    const bytes = stored.get(file.path);
    return {
      path: file.path,
      ...(file.criuSize === undefined ? {} : { criuSize: file.criuSize }),
      ...(file.appendOffset === undefined ? {} : { appendOffset: file.appendOffset }),
      ...(bytes === undefined ? {} : { storedBytes: bytes }),
    };
  });
  const wrong = layerMismatches(expected, stored);
  if (wrong.length > 0) {
    throw new MigrationError(
      'CHECKPOINT_INCONSISTENT',
      `the stored writable layer disagrees with the dump for ${wrong.length} open file(s): a restore would fail or run on files that disagree with the process's memory`,
      {
        step: 'prove',
        host: describeHost(ctx.target),
        detail: wrong
          .map((file) => `${file.path}: stored ${file.stored} bytes, expected ${file.expected}`)
          .join('\n'),
        remedy:
          'something changed the layer between the freeze and its copy; run the checkpoint again (the layer is copied frozen) and make sure nothing outside the container writes into it',
      },
    );
  }
  const inLayer = checked.filter((file) => file.storedBytes !== undefined).length;
  ctx.log.info(
    `stored layer agrees with the dump: ${inLayer} open file(s) of the layer checked, ${checked.length - inLayer} unchanged from the image`,
  );
  return checked;
}
