import type { ContainerInspect } from '../docker/inspect.js';
import { MigrationError } from '../errors.js';
import { gatherHostFacts, type HostFacts } from '../facts.js';
import { type Check, evaluateCompatibility } from '../policy/compatibility.js';
import { evaluateContainer } from '../policy/container-rules.js';
import type { MigrationContext } from './context.js';

export interface PreflightResult {
  source: HostFacts;
  target: HostFacts;
  container: ContainerInspect;
  checks: Check[];
}

export function formatCheck(check: Check): string {
  const mark = check.status === 'pass' ? 'ok  ' : check.status === 'warn' ? 'WARN' : 'FAIL';
  const line = `${mark} [${check.host}] ${check.name}: ${check.observed} (expected ${check.expected})`;
  return check.status !== 'pass' && check.remedy ? `${line}\n       remedy: ${check.remedy}` : line;
}

/**
 * Reads both hosts and the container, changes nothing, and refuses before
 * anything is touched when the migration cannot work.
 */
export async function preflight(ctx: MigrationContext): Promise<PreflightResult> {
  const ref = ctx.settings.container;
  const [source, target, container] = await Promise.all([
    gatherHostFacts(ctx.source),
    gatherHostFacts(ctx.target),
    ctx.sourceDocker.inspectContainer(ref, 'preflight'),
  ]);
  const name = container ? container.Name.replace(/^\//, '') : ref;
  const targetNameTaken = container
    ? (await ctx.targetDocker.inspectContainer(name, 'preflight')) !== undefined
    : false;
  const checks = [
    ...evaluateCompatibility({ source, target }, { kernelPolicy: ctx.settings.kernelPolicy }),
    ...evaluateContainer({ ref, container, targetNameTaken }),
  ];
  for (const check of checks) {
    if (check.status === 'warn') ctx.log.warning(formatCheck(check));
    else ctx.log.info(formatCheck(check));
  }
  const failed = checks.filter((check) => check.status === 'fail');
  if (failed.length > 0 || !container) {
    const first = failed[0];
    throw new MigrationError(
      first?.code ?? 'PREFLIGHT_FAILED',
      `migration refused before touching the container: ${failed.map((check) => `[${check.host}] ${check.name}: ${check.observed}`).join('; ')}`,
      { step: 'preflight', remedy: first?.remedy, detail: failed.map(formatCheck).join('\n') },
    );
  }
  return { source, target, container, checks };
}
