import { onHost, onHostResult, SERVICES_IMAGE, type Testbed } from './testbed.js';

/**
 * The compose project the unit tests move: a web service (busybox httpd, a CGI that increments
 * a Redis key named after its service on each request) and Redis with a named volume, on the
 * project's default network, started with the bed's real docker-compose.
 */
export class ComposeProject {
  readonly web: string;
  readonly redis: string;
  readonly network: string;

  constructor(
    private readonly bed: Testbed,
    readonly name: string,
    readonly port: number,
  ) {
    this.web = `${name}-web-1`;
    this.redis = `${name}-redis-1`;
    this.network = `${name}_default`;
  }

  file(): string {
    return `services:
  web:
    image: ${this.bed.image}
    command:
      - sh
      - -c
      - |
        mkdir -p /www/cgi-bin
        printf '#!/bin/sh\\nn=$$(printf "INCR hits:web\\\\r\\\\n" | nc redis 6379 | tr -dc 0-9)\\nprintf "Content-Type: text/plain\\\\r\\\\n\\\\r\\\\nweb %%s\\\\n" "$$n"\\n' >/www/cgi-bin/hit
        chmod +x /www/cgi-bin/hit
        exec httpd -f -p 8080 -h /www
    ports:
      - "${this.port}:8080"
    depends_on:
      - redis
  redis:
    image: ${SERVICES_IMAGE.tag}
    command: redis-server --appendonly yes --appendfsync always --dir /data --protected-mode no
    volumes:
      - data:/data
volumes:
  data:
`;
  }

  async up(host: string = this.bed.host1): Promise<void> {
    await onHost(
      this.bed,
      host,
      `mkdir -p /tmp/${this.name} && cat >/tmp/${this.name}/compose.yml <<'EOF'\n${this.file()}EOF\ndocker-compose -p ${this.name} -f /tmp/${this.name}/compose.yml up -d --quiet-pull 2>&1`,
    );
  }

  /** Every container, the network, the volume and the journals of the project on these hosts. */
  async remove(hosts: readonly string[]): Promise<void> {
    for (const host of hosts) {
      await onHostResult(
        this.bed,
        host,
        `docker ps -aq --filter label=com.docker.compose.project=${this.name} | xargs -r docker rm -f; docker network rm ${this.network}; docker volume rm ${this.name}_data; rm -rf /var/lib/criu-migrate/containers/${this.name}-*`,
      );
    }
  }

  /** One request to the web service on a host's published port: the counter it answers with. */
  async hit(host: string): Promise<number> {
    let last = '';
    // Redis takes a moment to accept connections after compose up: a few tries, bounded.
    for (let attempt = 0; attempt < 30; attempt += 1) {
      const result = await onHostResult(
        this.bed,
        host,
        `nsenter -t "$(cat /run/testbed-dockerd.pid)" -n busybox wget -q -T 5 -O - http://127.0.0.1:${this.port}/cgi-bin/hit`,
      );
      last = result.stdout + result.stderr;
      const match = /^web (\d+)$/m.exec(result.stdout);
      if (match) return Number(match[1]);
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`the web service on ${host} did not answer with a count: ${last}`);
  }

  async redisFacts(host: string): Promise<{ runId: string; hits: number }> {
    const out = await onHost(
      this.bed,
      host,
      `docker exec ${this.redis} sh -c 'redis-cli info server | grep ^run_id: ; redis-cli get hits:web'`,
    );
    return { runId: /run_id:(\w+)/.exec(out)?.[1] ?? '', hits: Number(out.trim().split('\n').pop()) };
  }

  /** A member's endpoint on the project network. */
  async endpoint(
    host: string,
    container: string,
  ): Promise<{ IPAddress: string; Aliases: string[]; DNSNames: string[] }> {
    const out = await onHost(
      this.bed,
      host,
      `docker inspect ${container} --format '{{json (index .NetworkSettings.Networks "${this.network}")}}'`,
    );
    return JSON.parse(out);
  }
}
