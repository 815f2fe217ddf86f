import { shellQuote } from '../../host/shell.js';

/**
 * The network holder: a container on a Docker 28/29 target that owns the migrated
 * container's network namespace (networks, aliases, addresses, published ports), so the
 * restored container can join it (`--network container:<holder>`) instead of having the
 * daemon attach a namespace by PID (moby#50750, containerd#12141).
 *
 * Its only process must never exit and must assume nothing about the app's image (a scratch
 * image has no shell and no sleep). The action makes its own one-file image on the target
 * with `docker import`: a static ELF executable of 129 bytes that calls pause(2) in a loop.
 * Written out here byte by byte rather than shipped as a binary, so a reviewer can read all
 * of it: nothing is downloaded and nothing of the host is copied into it.
 */

export const HOLDER_IMAGE = 'criu-migrate/netholder:1';
/** On the holder: the name of the container it holds the network for. */
export const HOLDER_LABEL = 'io.github.criu-migrate.network-holder-for';
/** Machine architectures (uname -m) the holder program exists for. */
export const HOLDER_ARCHES = ['x86_64'] as const;

/** A holder's network as the inspect describes it, for the manifest and `list`. */
export interface HolderNeeds {
  /** The network the holder joins (bridge, a user network, none). */
  network: string;
  aliases: string[];
  ipv4Address?: string;
  ipv6Address?: string;
  /** Published ports as `[ip:]hostPort:containerPort/proto`. */
  ports: string[];
  hostname?: string;
  /** The holder the container joined on the source, when it already ran through one. */
  sourceHolder?: string;
}

export function holderName(app: string): string {
  return `${app}-netholder`;
}

const LOAD_ADDRESS = 0x400000n;
const ELF_HEADER_SIZE = 64;
const PROGRAM_HEADER_SIZE = 56;

// x86_64: 0: mov eax, 34 (pause); 5: syscall; 7: jmp 0. A signal without a handler is ignored by
// PID 1 of a PID namespace, so only SIGKILL ends it: the holder is created with --stop-signal KILL.
const X86_64_PAUSE_LOOP = [0xb8, 0x22, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xeb, 0xf7];
const EM_X86_64 = 0x3e;

/** The holder's program: an ELF64 executable with one loadable segment, code right after the headers. */
export function pauseProgram(arch: string): Buffer | undefined {
  if (arch !== 'x86_64') return undefined;
  const code = Buffer.from(X86_64_PAUSE_LOOP);
  const codeOffset = ELF_HEADER_SIZE + PROGRAM_HEADER_SIZE;
  const size = codeOffset + code.length;
  const elf = Buffer.alloc(size);
  // e_ident: magic, 64-bit, little endian, version 1, System V ABI.
  elf.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0], 0);
  elf.writeUInt16LE(2, 16); // e_type: ET_EXEC
  elf.writeUInt16LE(EM_X86_64, 18); // e_machine
  elf.writeUInt32LE(1, 20); // e_version
  elf.writeBigUInt64LE(LOAD_ADDRESS + BigInt(codeOffset), 24); // e_entry
  elf.writeBigUInt64LE(BigInt(ELF_HEADER_SIZE), 32); // e_phoff
  elf.writeBigUInt64LE(0n, 40); // e_shoff: no sections
  elf.writeUInt32LE(0, 48); // e_flags
  elf.writeUInt16LE(ELF_HEADER_SIZE, 52); // e_ehsize
  elf.writeUInt16LE(PROGRAM_HEADER_SIZE, 54); // e_phentsize
  elf.writeUInt16LE(1, 56); // e_phnum
  elf.writeUInt16LE(0, 58); // e_shentsize
  elf.writeUInt16LE(0, 60); // e_shnum
  elf.writeUInt16LE(0, 62); // e_shstrndx
  const ph = ELF_HEADER_SIZE;
  elf.writeUInt32LE(1, ph); // p_type: PT_LOAD
  elf.writeUInt32LE(5, ph + 4); // p_flags: read + execute
  elf.writeBigUInt64LE(0n, ph + 8); // p_offset: the whole file
  elf.writeBigUInt64LE(LOAD_ADDRESS, ph + 16); // p_vaddr
  elf.writeBigUInt64LE(LOAD_ADDRESS, ph + 24); // p_paddr
  elf.writeBigUInt64LE(BigInt(size), ph + 32); // p_filesz
  elf.writeBigUInt64LE(BigInt(size), ph + 40); // p_memsz
  elf.writeBigUInt64LE(0x1000n, ph + 48); // p_align
  code.copy(elf, codeOffset);
  return elf;
}

/**
 * Shell text that makes HOLDER_IMAGE on a host that lacks it: the program as /pause in a
 * one-file tar, `docker import`ed with it as the entrypoint. Needs base64, tar and mktemp.
 */
export function holderImageScript(arch: string): string | undefined {
  const program = pauseProgram(arch);
  if (!program) return undefined;
  const image = shellQuote([HOLDER_IMAGE]);
  return [
    `docker image inspect ${image} >/dev/null 2>&1 && exit 0`,
    'd=$(mktemp -d) || exit 1',
    `echo ${program.toString('base64')} | base64 -d >"$d/pause" && chmod 755 "$d/pause" || { rm -rf "$d"; exit 1; }`,
    `tar -C "$d" -c pause | docker import --change 'ENTRYPOINT ["/pause"]' - ${image} >/dev/null; s=$?`,
    'rm -rf "$d"; exit $s',
  ].join('\n');
}
