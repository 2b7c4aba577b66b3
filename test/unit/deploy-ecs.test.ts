// deploy/ecs: the Fargate task definitions of `serve` and `worker`, checked as ECS would read them
// (RegisterTaskDefinition's fields and limits) and against this project's policies. No ECS schema
// is published on the registries this project uses, so the known fields are listed here: a
// misspelt field (which ECS rejects) fails the test rather than being ignored.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { knownModules } from '../../src/app.ts';
import { ConfigSchema, configSliceMeta, metaOf } from '../../src/platform/config/index.ts';

type Obj = Record<string, unknown>;
interface Pair {
  name: string;
  value?: string;
  valueFrom?: string;
}
interface Container extends Obj {
  name: string;
  image: string;
  command?: string[];
  environment?: Pair[];
  secrets?: Pair[];
}

const root = new URL('../../', import.meta.url).pathname;
const ECS = join(root, 'deploy/ecs');

// RegisterTaskDefinition's request fields and ContainerDefinition's (AWS API reference).
const TASK_FIELDS = new Set([
  'family',
  'taskRoleArn',
  'executionRoleArn',
  'networkMode',
  'containerDefinitions',
  'volumes',
  'placementConstraints',
  'requiresCompatibilities',
  'cpu',
  'memory',
  'tags',
  'pidMode',
  'ipcMode',
  'proxyConfiguration',
  'inferenceAccelerators',
  'ephemeralStorage',
  'runtimePlatform',
  'enableFaultInjection',
]);
const CONTAINER_FIELDS = new Set([
  'name',
  'image',
  'repositoryCredentials',
  'cpu',
  'memory',
  'memoryReservation',
  'links',
  'portMappings',
  'essential',
  'restartPolicy',
  'entryPoint',
  'command',
  'environment',
  'environmentFiles',
  'mountPoints',
  'volumesFrom',
  'linuxParameters',
  'secrets',
  'dependsOn',
  'startTimeout',
  'stopTimeout',
  'versionConsistency',
  'hostname',
  'user',
  'workingDirectory',
  'disableNetworking',
  'privileged',
  'readonlyRootFilesystem',
  'dnsServers',
  'dnsSearchDomains',
  'extraHosts',
  'dockerSecurityOptions',
  'interactive',
  'pseudoTerminal',
  'dockerLabels',
  'ulimits',
  'logConfiguration',
  'healthCheck',
  'systemControls',
  'resourceRequirements',
  'firelensConfiguration',
  'credentialSpecs',
]);
// Fargate's CPU units and the memory (MiB) each allows.
const FARGATE: Record<string, [number, number]> = {
  '256': [512, 2048],
  '512': [1024, 4096],
  '1024': [2048, 8192],
  '2048': [4096, 16384],
  '4096': [8192, 30720],
};

const modules = knownModules();
const settings = new Set([
  ...Object.keys(ConfigSchema.properties),
  ...modules.flatMap((m) => Object.keys(m.config?.properties ?? {})),
]);
const isSecret = (key: string) =>
  metaOf(key).secret === true ||
  modules.some((m) => key in (m.config?.properties ?? {}) && configSliceMeta(m, key).secret);

const SSM_ARN = /^arn:aws:ssm:[a-z0-9-]+:\d{12}:parameter\/[\w./-]+$/;
// Secrets Manager, optionally one JSON key of the secret: `<arn>:<json-key>:<stage>:<version>`.
const SECRETS_MANAGER_ARN =
  /^arn:aws:secretsmanager:[a-z0-9-]+:\d{12}:secret:[\w/+=.@-]+(:[\w.-]*:[\w-]*:[\w-]*)?$/;

const files = readdirSync(ECS)
  .filter((f) => f.endsWith('task-definition.json'))
  .sort();

test('one task definition per role that runs as a service: serve and worker', () => {
  assert.deepEqual(files, ['serve-task-definition.json', 'worker-task-definition.json']);
});

for (const file of files) {
  const role = file.replace('-task-definition.json', '');
  describe(`deploy/ecs/${file}`, () => {
    const task = JSON.parse(readFileSync(join(ECS, file), 'utf8')) as Obj;
    const containers = task.containerDefinitions as Container[];
    const volumes = new Set(((task.volumes as Obj[] | undefined) ?? []).map((v) => v.name));

    test('only fields ECS knows, and a valid Fargate size', () => {
      for (const key of Object.keys(task)) assert.ok(TASK_FIELDS.has(key), `task field ${key}`);
      for (const c of containers)
        for (const key of Object.keys(c))
          assert.ok(CONTAINER_FIELDS.has(key), `container field ${key}`);
      assert.equal(task.family, `groundwork-${role}`);
      assert.deepEqual(task.requiresCompatibilities, ['FARGATE']);
      assert.equal(task.networkMode, 'awsvpc');
      const [min, max] = FARGATE[String(task.cpu)] ?? [NaN, NaN];
      const memory = Number(task.memory);
      assert.ok(
        memory >= min && memory <= max,
        `cpu ${String(task.cpu)} with memory ${String(task.memory)}`,
      );
      assert.match(String(task.executionRoleArn), /^arn:aws:iam::\d{12}:role\/[\w+=,.@-]+$/);
      assert.match(String(task.taskRoleArn), /^arn:aws:iam::\d{12}:role\/[\w+=,.@-]+$/);
      assert.equal(containers.length, 1);
    });

    test('the container runs its role of the image, pinned, as a non-root user with a read-only root filesystem', () => {
      for (const c of containers) {
        assert.equal(c.name, role);
        assert.equal(c.essential, true);
        assert.deepEqual(c.command, [role]);
        assert.ok(!c.entryPoint, 'the image’s entry point (node dist/main.js)');
        assert.match(
          c.image,
          /^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com\/[\w./-]+(:[\w.-]+|@sha256:[a-f0-9]{64})$/,
        );
        assert.doesNotMatch(c.image, /:latest$/);
        const user = typeof c.user === 'string' ? c.user : '';
        assert.match(user, /^[1-9]\d*(:[1-9]\d*)?$/, `user ${user}: a non-zero uid`);
        assert.equal(c.readonlyRootFilesystem, true);
        assert.ok(!c.privileged);
        const caps = (c.linuxParameters as { capabilities?: { drop?: string[]; add?: string[] } })
          .capabilities;
        assert.deepEqual(caps?.drop, ['ALL']);
        assert.ok(!caps.add);
        const mounts = (c.mountPoints as Obj[] | undefined) ?? [];
        const tmp = mounts.find((m) => m.containerPath === '/tmp');
        assert.ok(
          tmp && volumes.has(tmp.sourceVolume) && tmp.readOnly === false,
          '/tmp is a writable task volume',
        );
      }
    });

    test('logs go to CloudWatch (awslogs) with a group, a region and a stream prefix', () => {
      for (const c of containers) {
        const log = c.logConfiguration as { logDriver: string; options: Record<string, string> };
        assert.equal(log.logDriver, 'awslogs');
        assert.match(log.options['awslogs-group'] ?? '', /^\/ecs\/[\w/-]+$/);
        assert.match(log.options['awslogs-region'] ?? '', /^[a-z]{2}-[a-z]+-\d$/);
        assert.equal(log.options['awslogs-stream-prefix'], role);
      }
    });

    test('the health check asks /health/live within ECS’s limits; the stop timeout covers the drain', () => {
      for (const c of containers) {
        const h = c.healthCheck as {
          command: string[];
          interval: number;
          timeout: number;
          retries: number;
          startPeriod: number;
        };
        assert.equal(h.command[0], 'CMD');
        assert.ok(h.command.join(' ').includes('/health/live'), 'liveness, not readiness');
        assert.ok(h.interval >= 5 && h.interval <= 300);
        assert.ok(h.timeout >= 2 && h.timeout <= 60 && h.timeout < h.interval);
        assert.ok(h.retries >= 1 && h.retries <= 10);
        assert.ok(h.startPeriod >= 0 && h.startPeriod <= 300);
        const env = Object.fromEntries((c.environment ?? []).map((e) => [e.name, e.value]));
        const drain = Number(env.SHUTDOWN_DRAIN_DELAY_MS);
        const grace = Number(env.SHUTDOWN_GRACE_MS);
        const stop = Number(c.stopTimeout);
        assert.ok(stop <= 120, 'Fargate allows at most 120 s');
        assert.ok(
          stop * 1000 > drain + grace + 1_000,
          `stopTimeout ${String(stop)} s > drain + grace + 1 s`,
        );
        if (role === 'serve')
          assert.deepEqual(
            (c.portMappings as Obj[]).map((p) => p.containerPort),
            [Number(env.PORT)],
          );
      }
    });

    test('every variable is a real setting; secrets come from SSM or Secrets Manager, never as plain values', () => {
      for (const c of containers) {
        const plain = (c.environment ?? []).map((e) => e.name);
        const secret = (c.secrets ?? []).map((s) => s.name);
        for (const name of [...plain, ...secret])
          assert.ok(settings.has(name), `${name} is not a setting of the server`);
        assert.equal(
          new Set([...plain, ...secret]).size,
          plain.length + secret.length,
          'each variable once',
        );
        for (const name of plain) assert.ok(!isSecret(name), `${name} is a secret: use secrets[]`);
        for (const e of c.environment ?? []) assert.equal(typeof e.value, 'string', e.name);
        for (const s of c.secrets ?? [])
          assert.ok(
            SSM_ARN.test(String(s.valueFrom)) || SECRETS_MANAGER_ARN.test(String(s.valueFrom)),
            `${s.name}: ${String(s.valueFrom)}`,
          );
        for (const required of [
          'APP_SECRET',
          'AUTH_JWT_PRIVATE_KEY',
          'DATABASE_URL',
          'SMTP_URL',
          'REDIS_URL',
        ])
          assert.ok(secret.includes(required), `${required} from a secret store`);
        const env = Object.fromEntries((c.environment ?? []).map((e) => [e.name, e.value]));
        assert.equal(env.APP_ENV, 'production');
        assert.equal(
          env.MIGRATE_ON_START,
          'false',
          'migrations are a one-off task before the deployment',
        );
        assert.equal(env.STORAGE_DRIVER, 's3', 'a read-only root filesystem keeps no files');
        for (const key of ['PUBLIC_URL', 'MAIL_FROM'])
          assert.ok(env[key], `${key} is required in production`);
      }
    });
  });
}
