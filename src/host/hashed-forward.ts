import { MigrationError } from '../errors.js';
import { describeHost, type Host, type HostProcess } from './host.js';
import { ending, firstLine, keepTail } from './process-lines.js';
import { BYTES_MARK, HASH_SUM, hostDetail, parseHostBytes, parseHostSum, SUM_MARK } from './relay.js';

/**
 * One TCP connection passed on between two ports of a host's 127.0.0.1, with
 * the sha256 of what flowed from the accepting side to the upstream side.
 * Put at both ends of memory: overlap's page stream (the dump's side on the
 * source, the page server's side on the target), it gives those pages the
 * same check every other stream has: the sum each host computed of the bytes
 * it passed on, compared by the runner. perl-base carries the sockets (it is
 * essential on Debian and Ubuntu), the same sha256 tool as every stream hashes (HASH_SUM).
 */

export const FORWARD_LISTENING = 'listening';
/** What the script prints instead when the host has no perl. */
export const FORWARD_NO_PERL = 'no-perl';

/**
 * Accepts one connection on 127.0.0.1:$ARGV[0], connects it to 127.0.0.1:$ARGV[1] and copies
 * both ways until both sides ended; the accepted side's bytes go to fd 3 too. Either side's end
 * is passed on as a half-close: CRIU's page server answers the dump's last command, then the dump
 * closes. Standard input at its end (the runner closed it, or is gone) stops the copy.
 */
const PERL_FORWARD = [
  'use IO::Socket::INET; use IO::Select; use Socket qw(IPPROTO_TCP TCP_NODELAY);',
  'my ($lp, $up) = @ARGV; $| = 1;',
  'open(my $h, ">&=", 3) or die "fd 3: $!"; fcntl($h, 1031, 1048576);',
  'my $l = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => $lp, Listen => 1, ReuseAddr => 1)',
  ' or die "listen on 127.0.0.1:$lp: $!";',
  `print "${FORWARD_LISTENING}\\n";`,
  'my $in = IO::Select->new($l, \\*STDIN); my ($c, $buf);',
  'until ($c) { for my $r ($in->can_read) {',
  ' if (fileno($r) == fileno($l)) { $c = $l->accept or die "accept: $!" }',
  ' elsif (!sysread(STDIN, $buf, 4096)) { die "stopped before a connection came\\n" } } }',
  'close $l;',
  'my $u = IO::Socket::INET->new(PeerAddr => "127.0.0.1", PeerPort => $up) or die "connect to 127.0.0.1:$up: $!";',
  'setsockopt($_, IPPROTO_TCP, TCP_NODELAY, 1) for $c, $u;',
  'my $s = IO::Select->new($c, $u, \\*STDIN); my ($t, $open) = (0, 2);',
  'while ($open) { for my $r ($s->can_read) {',
  ' if (fileno($r) == fileno(STDIN)) { sysread(STDIN, $buf, 4096) or die "stopped after $t bytes\\n"; next }',
  ' my $n = sysread($r, $buf, 1048576); defined $n or die "read: $!";',
  ' my $fwd = fileno($r) == fileno($c); my $to = $fwd ? $u : $c;',
  ' if (!$n) { $s->remove($r); shutdown($to, 1); $open--; next }',
  ' for my $w ($fwd ? ($to, $h) : ($to)) { my $o = 0; while ($o < $n) {',
  '  my $k = syswrite($w, $buf, $n - $o, $o); defined $k or die "write: $!"; $o += $k } }',
  ' $t += $n if $fwd } }',
  'close($h) or die "fd 3: $!";',
  `print STDERR "${BYTES_MARK} $t\\n";`,
].join('\n');

/**
 * The host's command: prints `listening` once the port is bound (or `no-perl`), then on stderr
 * the bytes passed on and their sha256 (SUM_MARK). Closing its standard input stops it.
 */
export function hashedForwardScript(listenPort: number, upstreamPort: number): string {
  return [
    `command -v perl >/dev/null 2>&1 || { echo ${FORWARD_NO_PERL}; exit 1; }`,
    HASH_SUM,
    'exec 4>&1',
    `perl -e '${PERL_FORWARD}' ${listenPort} ${upstreamPort} 3>&1 1>&4 4>&- | { s=$(hashsum 4>&-) && printf '${SUM_MARK} %s\\n' "\${s%% *}" >&2; }`,
  ].join('\n');
}

/** What one end passed on: the bytes and their sha256, or why it cannot say. */
export type ForwardTally = { bytes: number; sha256: string } | { problem: string };

/** Reads an ended forward's lines: both the byte count and the sum, or what it said instead. */
export function tallyOf(stderr: string): ForwardTally {
  const bytes = parseHostBytes(stderr);
  const sha256 = parseHostSum(stderr);
  if (bytes !== undefined && sha256 !== undefined) return { bytes, sha256 };
  return { problem: hostDetail(stderr) ?? 'it ended without saying what it passed on' };
}

export interface HashedForward {
  /** Where to connect: the listening port on the host's 127.0.0.1. */
  readonly port: number;
  /** Waits (at most `ms`) for the forward to end, then says what it passed on. */
  tally(ms: number): Promise<ForwardTally>;
  /** What it printed on stderr so far, without the runner's marks. */
  said(): string;
  stop(): void;
}

/** Starts a hashed forward on `host` and waits until it listens (30 s at most). */
export async function startHashedForward(
  host: Host,
  listenPort: number,
  upstreamPort: number,
  what: string,
): Promise<HashedForward> {
  const process: HostProcess = await host.spawn(hashedForwardScript(listenPort, upstreamPort));
  const stderr = keepTail(process.stderr);
  const end = ending(process);
  const stop = (): void => {
    process.stdin.end();
    if (!end.ended()) process.kill();
  };
  const first = await firstLine(process.stdout, process.exit, 30_000);
  if (first !== FORWARD_LISTENING) {
    stop();
    throw new MigrationError('TRANSFER_FAILED', `the ${what} on ${describeHost(host)} did not start`, {
      step: 'checkpoint',
      host: describeHost(host),
      detail:
        first === FORWARD_NO_PERL
          ? 'perl is not installed there'
          : [first === 'timeout' ? 'no answer in 30 s' : first, hostDetail(stderr())]
              .filter(Boolean)
              .join('\n'),
      remedy:
        first === FORWARD_NO_PERL
          ? 'install perl (perl-base) there, or use memory: eager'
          : 'read the lines above, or use memory: eager',
    });
  }
  return {
    port: listenPort,
    async tally(ms) {
      if (!(await end.within(ms))) {
        stop();
        return { problem: `it had not ended ${Math.round(ms / 1000)} s after the dump` };
      }
      return tallyOf(stderr());
    },
    said: () => hostDetail(stderr()) ?? '',
    stop,
  };
}
