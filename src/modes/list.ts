import * as core from '@actions/core';
import { asMigrationError } from '../errors.js';
import { describeHost, type Host } from '../host/host.js';
import { openHost } from '../host/host-factory.js';
import { withErrorLink } from '../report/error-docs.js';
import { metadataError } from '../report/metadata.js';
import {
  buildListing,
  listingLines,
  listingRows,
  unitLines,
  unitRows,
  withUnits,
} from '../report/store-listing.js';
import { escapeHtml, writeFailureSummary } from '../report/summary.js';
import type { Runtime } from '../runtime.js';
import { describeLocation, type ListSettings } from '../settings.js';
import { listStore, listUnits } from '../state/store-listing.js';

/**
 * List mode: the store's series and checkpoints (of one container, one series
 * or all) as a job summary table and one JSON output. Reads manifests and
 * drill results only: it takes no lock and writes nothing on the store host.
 */
export async function runListMode(settings: ListSettings, runtime: Runtime): Promise<void> {
  const { log } = runtime;
  const startedAt = performance.now();
  let host: Host | undefined;
  try {
    host = await openHost('store', settings.store.host, settings.ssh, settings.sudo, {
      warn: (message) => log.warning(message),
    });
    log.info(`${describeHost(host)}: connected; reading ${settings.store.path}`);
    const found = await listStore(host, settings.store.path, settings.container || undefined);
    const wanted = settings.series ? found.filter((entry) => entry.series === settings.series) : found;
    // Unit checkpoints of compose projects: shown with the members' series, or all of them.
    const listing = withUnits(
      buildListing(wanted, { host: host.address, path: settings.store.path }),
      await listUnits(host, settings.store.path),
      !settings.container && !settings.series,
    );
    const what = [
      settings.container ? `container ${settings.container}` : 'every container',
      settings.series ? `series ${settings.series}` : '',
    ]
      .filter(Boolean)
      .join(', ');
    const count = listing.series.reduce((sum, series) => sum + series.checkpoints.length, 0);
    log.info(`${count} complete checkpoint(s) in ${listing.series.length} series (${what})`);
    for (const line of listingLines(listing)) log.info(line);
    for (const line of unitLines(listing.units ?? [])) log.info(line);
    core.setOutput('listing', JSON.stringify(listing));
    core.setOutput('status', 'succeeded');
    core.setOutput('error-code', '');
    core.setOutput('duration-ms', Math.round(performance.now() - startedAt));
    if (runtime.env.GITHUB_STEP_SUMMARY) {
      const summary = core.summary.addHeading(
        `Checkpoint store: ${escapeHtml(settings.store.path)} on ${escapeHtml(host.address)}`,
        2,
      );
      if (count === 0) summary.addRaw(`<p>No complete checkpoints (${escapeHtml(what)}).</p>`, true);
      else summary.addTable(listingRows(listing));
      if (listing.units)
        summary.addHeading('Unit checkpoints (compose projects)', 3).addTable(unitRows(listing.units));
      await summary.write();
    }
  } catch (error) {
    const failure = asMigrationError(error, 'COMMAND_FAILED', { step: 'list' });
    core.setOutput('status', 'failed');
    core.setOutput('error-code', failure.code);
    core.setOutput('duration-ms', Math.round(performance.now() - startedAt));
    core.setFailed(withErrorLink(failure.describe(), failure.code, runtime.env));
    if (runtime.env.GITHUB_STEP_SUMMARY) {
      await writeFailureSummary(
        core.summary,
        metadataError(failure),
        {
          mode: 'list',
          outcome: 'failed',
          container: settings.container || '(all)',
          store: describeLocation(settings.store.host),
        },
        runtime.env,
      ).catch(() => {});
    }
  } finally {
    await host?.close();
  }
}
