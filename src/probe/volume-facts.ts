import type { ContainerInspect } from '../engine/docker/inspect.js';
import type { Host } from '../host/host.js';
import {
  movedVolumeNames,
  parseVolumeProbes,
  type VolumeFacts,
  volumeProbeScript,
} from '../policy/volumes.js';

/** Reads, on both hosts at once, the volumes the container would take along; read-only. */
export async function gatherVolumeFacts(
  source: Host,
  target: Host,
  container: ContainerInspect,
): Promise<VolumeFacts | undefined> {
  const names = movedVolumeNames(container);
  if (names.length === 0) return undefined;
  const script = volumeProbeScript(names);
  const facts: VolumeFacts = { source: [], target: [], unreadable: {} };
  const [fromSource, fromTarget] = await Promise.all([
    source.run(script, { timeoutMs: 120_000 }),
    target.run(script, { timeoutMs: 120_000 }),
  ]);
  if (fromSource.exitCode === 0) facts.source = parseVolumeProbes(fromSource.stdout);
  else facts.unreadable.source = fromSource.stderr.trim() || `exit ${fromSource.exitCode}`;
  if (fromTarget.exitCode === 0) facts.target = parseVolumeProbes(fromTarget.stdout);
  else facts.unreadable.target = fromTarget.stderr.trim() || `exit ${fromTarget.exitCode}`;
  return facts;
}
