// deploy/k8s: the kustomize base and overlays, rendered here and validated object by object.
//
// kustomize itself is not installable from the registries this project uses, and no npm package
// renders kustomizations, so `renderKustomization` below implements the subset the manifests use
// (and refuses any other field, so a manifest cannot silently rely on more): `resources` (files,
// multi-document YAML, and directories holding a kustomization.yaml), `namespace`, `images`
// (`newName`, `newTag`, `digest`) and `patches` in JSON 6902 form (add, replace, remove; a
// `target` by kind and name). Each object is then validated with `kubernetes-models` (the
// Kubernetes OpenAPI schemas) and checked against this project's policies.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { Deployment } from 'kubernetes-models/apps/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { Job } from 'kubernetes-models/batch/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ConfigMap, Service, ServiceAccount } from 'kubernetes-models/v1';
import { knownModules } from '../../src/app.ts';
import { ConfigSchema } from '../../src/platform/config/index.ts';

type Obj = Record<string, unknown>;
interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  [key: string]: unknown;
}

const root = new URL('../../', import.meta.url).pathname;
const K8S = join(root, 'deploy/k8s');

const KUSTOMIZATION_FIELDS = new Set([
  'apiVersion',
  'kind',
  'resources',
  'namespace',
  'images',
  'patches',
]);

interface JsonPatchOp {
  op: 'add' | 'replace' | 'remove';
  path: string;
  value?: unknown;
}

/** RFC 6901 pointer segments (`~1` is `/`, `~0` is `~`). */
function pointer(path: string): string[] {
  assert.ok(path.startsWith('/'), `JSON pointer ${path} must start with /`);
  return path
    .slice(1)
    .split('/')
    .map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'));
}

/** Applies RFC 6902 add/replace/remove in place; a path that does not exist fails (as kustomize does). */
function applyJsonPatch(target: Obj, ops: readonly JsonPatchOp[], where: string): void {
  for (const { op, path, value } of ops) {
    assert.ok(
      ['add', 'replace', 'remove'].includes(op),
      `${where}: op ${op} is not supported here`,
    );
    const parts = pointer(path);
    const last = parts.pop() as string;
    let node: unknown = target;
    for (const part of parts) {
      node = Array.isArray(node) ? node[Number(part)] : (node as Obj | undefined)?.[part];
      assert.ok(node !== undefined && node !== null, `${where}: ${path} does not exist`);
    }
    if (Array.isArray(node)) {
      const index = last === '-' ? node.length : Number(last);
      assert.ok(Number.isInteger(index) && index >= 0 && index <= node.length, `${where}: ${path}`);
      if (op === 'add') node.splice(index, 0, value);
      else {
        assert.ok(index < node.length, `${where}: ${path} does not exist`);
        if (op === 'replace') node[index] = value;
        else node.splice(index, 1);
      }
    } else {
      const parent = node as Obj;
      if (op !== 'add') assert.ok(last in parent, `${where}: ${path} does not exist`);
      if (op === 'remove') delete parent[last];
      else parent[last] = value;
    }
  }
}

function podSpecs(o: K8sObject): Obj[] {
  const spec = o.spec as Obj | undefined;
  const template = spec?.template as Obj | undefined;
  return template?.spec ? [template.spec as Obj] : [];
}

function containersOf(o: K8sObject): Obj[] {
  return podSpecs(o).flatMap((p) => [
    ...((p.initContainers as Obj[] | undefined) ?? []),
    ...((p.containers as Obj[] | undefined) ?? []),
  ]);
}

/** `kustomize build <dir>` for the subset described at the top of this file. */
function renderKustomization(dir: string): K8sObject[] {
  const file = join(dir, 'kustomization.yaml');
  const k = parseYaml(readFileSync(file, 'utf8')) as Obj;
  for (const field of Object.keys(k))
    assert.ok(
      KUSTOMIZATION_FIELDS.has(field),
      `${file}: ${field} is not supported by this renderer`,
    );
  assert.equal(k.kind, 'Kustomization', file);
  const objects: K8sObject[] = [];
  for (const resource of (k.resources as string[] | undefined) ?? []) {
    const path = join(dir, resource);
    if (statSync(path).isDirectory()) objects.push(...renderKustomization(path));
    else
      for (const doc of parseAllDocuments(readFileSync(path, 'utf8'))) {
        assert.equal(doc.errors.length, 0, `${path}: ${doc.errors.map((e) => e.message).join()}`);
        const value = doc.toJS() as K8sObject | null;
        if (value) objects.push(value);
      }
  }
  const namespace = k.namespace as string | undefined;
  if (namespace) for (const o of objects) o.metadata.namespace = namespace;
  const images = (k.images ?? []) as {
    name: string;
    newName?: string;
    newTag?: string | number;
    digest?: string;
  }[];
  for (const image of images) {
    for (const c of objects.flatMap(containersOf)) {
      const [name = '', tag] = String(c.image).split(/:(?=[^/]*$)/);
      if (name.split('@')[0] !== image.name) continue;
      const newName = image.newName ?? name;
      if (image.digest) c.image = `${newName}@${image.digest}`;
      else {
        const newTag = image.newTag === undefined ? tag : String(image.newTag);
        c.image = newTag ? `${newName}:${newTag}` : newName;
      }
    }
  }
  for (const patch of (k.patches as Obj[] | undefined) ?? []) {
    const target = patch.target as { kind: string; name: string } | undefined;
    assert.ok(target?.kind && target.name, `${file}: a patch names its target kind and name`);
    const text =
      typeof patch.patch === 'string'
        ? patch.patch
        : readFileSync(join(dir, String(patch.path)), 'utf8');
    const ops = parseYaml(text) as JsonPatchOp[];
    assert.ok(Array.isArray(ops), `${file}: only JSON 6902 patches (a list of operations)`);
    const matches = objects.filter(
      (o) => o.kind === target.kind && o.metadata.name === target.name,
    );
    assert.equal(matches.length, 1, `${file}: the patch target ${target.kind}/${target.name}`);
    applyJsonPatch(matches[0] as Obj, ops, `${file} ${target.kind}/${target.name}`);
  }
  return objects;
}

// Every kind the manifests use, by apiVersion and kind: an object of any other kind fails.
const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  'apps/v1/Deployment': Deployment,
  'batch/v1/Job': Job,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'v1/Service': Service,
  'v1/ConfigMap': ConfigMap,
  'v1/ServiceAccount': ServiceAccount,
};

const modules = knownModules();
const SETTINGS = new Set([
  ...Object.keys(ConfigSchema.properties),
  ...modules.flatMap((m) => Object.keys(m.config?.properties ?? {})),
]);
const CONFIG_DOCS = readFileSync(join(root, 'docs/configuration.md'), 'utf8');

const TARGETS = {
  base: join(K8S, 'base'),
  staging: join(K8S, 'overlays/staging'),
  production: join(K8S, 'overlays/production'),
};

const find = (objects: K8sObject[], kind: string, name: string): K8sObject => {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
  assert.ok(o, `${kind}/${name}`);
  return o;
};

describe('renderer (the subset of kustomize used here)', () => {
  test('JSON 6902 add, replace and remove; a missing path fails', () => {
    const doc: Obj = { a: { b: [1, 2] }, c: 'x' };
    applyJsonPatch(
      doc,
      [
        { op: 'replace', path: '/a/b/0', value: 9 },
        { op: 'add', path: '/a/b/-', value: 3 },
        { op: 'add', path: '/a/d~1e', value: true },
        { op: 'remove', path: '/c' },
      ],
      'test',
    );
    assert.deepEqual(doc, { a: { b: [9, 2, 3], 'd/e': true } });
    assert.throws(() =>
      applyJsonPatch(doc, [{ op: 'replace', path: '/nope/x', value: 1 }], 'test'),
    );
    assert.throws(() => applyJsonPatch(doc, [{ op: 'replace', path: '/a/zz', value: 1 }], 'test'));
  });
});

for (const [name, dir] of Object.entries(TARGETS)) {
  describe(`deploy/k8s/${name === 'base' ? 'base' : `overlays/${name}`}`, () => {
    const objects = renderKustomization(dir);
    const workloads = objects.filter((o) => o.kind === 'Deployment' || o.kind === 'Job');
    const config = find(objects, 'ConfigMap', 'groundwork-config').data as Record<string, string>;

    test('every object is a valid Kubernetes object of a known kind (kubernetes-models schemas)', () => {
      assert.ok(objects.length >= 12, `${String(objects.length)} objects`);
      const seen = new Set<string>();
      for (const o of objects) {
        const model = MODELS[`${o.apiVersion}/${o.kind}`];
        assert.ok(model, `${o.apiVersion} ${o.kind} is not a kind this deployment uses`);
        assert.doesNotThrow(() => new model(o as never).validate(), `${o.kind}/${o.metadata.name}`);
        const id = `${o.kind}/${o.metadata.name}`;
        assert.ok(!seen.has(id), `${id} twice`);
        seen.add(id);
        if (name !== 'base') assert.ok(o.metadata.namespace, `${id} has a namespace`);
      }
      for (const kind of [
        'Deployment',
        'Job',
        'Service',
        'HorizontalPodAutoscaler',
        'PodDisruptionBudget',
        'NetworkPolicy',
        'ConfigMap',
      ])
        assert.ok(
          objects.some((o) => o.kind === kind),
          `a ${kind}`,
        );
    });

    test('serve and worker run the image’s roles; migrate is a Job run before them', () => {
      const args = (kind: string, n: string) =>
        containersOf(find(objects, kind, n)).map((c) => c.args);
      assert.deepEqual(args('Deployment', 'groundwork-serve'), [['serve']]);
      assert.deepEqual(args('Deployment', 'groundwork-worker'), [['worker']]);
      assert.deepEqual(args('Job', 'groundwork-migrate'), [['migrate']]);
      const job = find(objects, 'Job', 'groundwork-migrate');
      assert.equal(job.metadata.annotations?.['argocd.argoproj.io/hook'], 'PreSync');
      assert.equal(
        job.metadata.labels?.['app.kubernetes.io/component'],
        'migrate',
        'selectable to apply first',
      );
      assert.equal((podSpecs(job)[0] as Obj).restartPolicy, 'Never');
      assert.equal(config.MIGRATE_ON_START, 'false', 'no process migrates at start');
    });

    test('pods: non-root, read-only root filesystem with /tmp an emptyDir, no capabilities, RuntimeDefault seccomp, no token', () => {
      for (const w of workloads) {
        const id = `${w.kind}/${w.metadata.name}`;
        for (const pod of podSpecs(w)) {
          const psc = pod.securityContext as Obj;
          assert.equal(psc.runAsNonRoot, true, id);
          assert.ok(Number(psc.runAsUser) > 0, `${id} runAsUser`);
          assert.equal((psc.seccompProfile as Obj | undefined)?.type, 'RuntimeDefault', id);
          assert.equal(pod.automountServiceAccountToken, false, id);
          const tmp = ((pod.volumes as Obj[] | undefined) ?? []).find((v) => v.name === 'tmp');
          assert.ok(tmp?.emptyDir, `${id}: /tmp is an emptyDir`);
        }
        for (const c of containersOf(w)) {
          const sc = c.securityContext as Obj;
          assert.equal(sc.readOnlyRootFilesystem, true, id);
          assert.equal(sc.allowPrivilegeEscalation, false, id);
          assert.deepEqual((sc.capabilities as Obj).drop, ['ALL'], id);
          assert.ok(!(sc.capabilities as Obj).add, `${id} adds no capability`);
          assert.ok(
            ((c.volumeMounts as Obj[] | undefined) ?? []).some(
              (m) => m.name === 'tmp' && m.mountPath === '/tmp',
            ),
            `${id} mounts /tmp`,
          );
        }
      }
    });

    test('resources are set: CPU and memory requests, a memory limit', () => {
      for (const w of workloads)
        for (const c of containersOf(w)) {
          const r = c.resources as { requests?: Obj; limits?: Obj } | undefined;
          const id = `${w.kind}/${w.metadata.name}`;
          assert.ok(r?.requests?.cpu && r.requests.memory, `${id} requests`);
          assert.ok(r.limits?.memory, `${id} memory limit`);
        }
    });

    test('serve and worker: startup, liveness on /health/live, readiness on /health/ready, with timings that fit the drain', () => {
      const drainMs = Number(config.SHUTDOWN_DRAIN_DELAY_MS);
      const graceMs = Number(config.SHUTDOWN_GRACE_MS);
      for (const n of ['groundwork-serve', 'groundwork-worker']) {
        const d = find(objects, 'Deployment', n);
        const [c] = containersOf(d);
        const probe = (k: string) =>
          c?.[k] as
            | {
                httpGet?: Obj;
                periodSeconds: number;
                timeoutSeconds: number;
                failureThreshold: number;
              }
            | undefined;
        assert.equal(probe('livenessProbe')?.httpGet?.path, '/health/live', n);
        assert.equal(probe('readinessProbe')?.httpGet?.path, '/health/ready', n);
        assert.equal(probe('startupProbe')?.httpGet?.path, '/health/live', n);
        const ready = probe('readinessProbe');
        assert.ok(
          ready && ready.timeoutSeconds < ready.periodSeconds,
          `${n}: a readiness check ends before the next`,
        );
        // The balancer must notice readiness failing before the listener closes.
        assert.ok(
          ready && ready.periodSeconds * ready.failureThreshold * 1000 <= drainMs,
          `${n}: drain ${String(drainMs)} ms`,
        );
        const live = probe('livenessProbe');
        assert.ok(
          live && live.periodSeconds * live.failureThreshold >= 20,
          `${n}: liveness is not trigger-happy`,
        );
        const grace = Number((podSpecs(d)[0] as Obj).terminationGracePeriodSeconds);
        assert.ok(
          grace * 1000 > drainMs + graceMs + 1_000,
          `${n}: ${String(grace)} s > drain + grace + 1 s`,
        );
        const port = (c?.ports as Obj[])[0];
        assert.equal(port?.containerPort, Number(config.PORT ?? 3000));
      }
    });

    test('settings: ConfigMap keys are real settings, secrets come from secretKeyRef with keys in docs/configuration.md', () => {
      for (const key of Object.keys(config))
        assert.ok(SETTINGS.has(key), `ConfigMap key ${key} is no setting`);
      const secretKeys = new Set<string>();
      for (const w of workloads)
        for (const c of containersOf(w)) {
          for (const e of (c.env as Obj[] | undefined) ?? []) {
            const ref = (e.valueFrom as Obj | undefined)?.secretKeyRef as Obj | undefined;
            assert.ok(ref, `${String(e.name)}: only secrets go in env (settings in the ConfigMap)`);
            assert.ok(!('value' in e), `${String(e.name)} carries no literal value`);
            assert.equal(ref.name, 'groundwork-secrets');
            assert.equal(ref.key, e.name, 'the secret key is the variable name');
            assert.ok(SETTINGS.has(String(e.name)), `${String(e.name)} is no setting`);
            assert.match(
              CONFIG_DOCS,
              new RegExp(`\\| \`${String(ref.key)}\` \\|`),
              `${String(ref.key)} in docs/configuration.md`,
            );
            secretKeys.add(String(ref.key));
          }
          assert.deepEqual(c.envFrom, [{ configMapRef: { name: 'groundwork-config' } }]);
        }
      for (const required of [
        'APP_SECRET',
        'AUTH_JWT_PRIVATE_KEY',
        'DATABASE_URL',
        'SMTP_URL',
        'REDIS_URL',
      ])
        assert.ok(secretKeys.has(required), required);
      assert.ok(!objects.some((o) => o.kind === 'Secret'), 'no Secret is committed');
      // Secrets never sit in the ConfigMap.
      for (const key of [
        'APP_SECRET',
        'AUTH_JWT_PRIVATE_KEY',
        'DATABASE_URL',
        'SMTP_URL',
        'METRICS_TOKEN',
      ])
        assert.ok(!(key in config), `${key} in the ConfigMap`);
      assert.equal(config.GROUNDWORK_ENV_FILE, 'off');
      assert.equal(config.STORAGE_DRIVER, 's3', 'a read-only root filesystem keeps no files');
    });

    test('Service, HPA and PDB select the serve pods; the HPA owns the replica count', () => {
      const labels = (d: K8sObject) =>
        (((d.spec as Obj).template as Obj).metadata as Obj).labels as Record<string, string>;
      const serve = find(objects, 'Deployment', 'groundwork-serve');
      const selects = (selector: Record<string, string>, d: K8sObject) =>
        Object.entries(selector).every(([k, v]) => labels(d)[k] === v);
      const service = find(objects, 'Service', 'groundwork');
      assert.ok(selects((service.spec as Obj).selector as Record<string, string>, serve));
      assert.equal(((service.spec as Obj).ports as Obj[])[0]?.targetPort, 'http');
      for (const n of ['groundwork-serve', 'groundwork-worker']) {
        const d = find(objects, 'Deployment', n);
        assert.ok(!('replicas' in (d.spec as Obj)), `${n}: no replicas field to fight the HPA`);
        const hpa = find(objects, 'HorizontalPodAutoscaler', n).spec as Obj;
        assert.deepEqual(hpa.scaleTargetRef, {
          apiVersion: 'apps/v1',
          kind: 'Deployment',
          name: n,
        });
        assert.ok(
          Number(hpa.minReplicas) >= 1 && Number(hpa.maxReplicas) >= Number(hpa.minReplicas),
        );
        const pdb = find(objects, 'PodDisruptionBudget', n).spec as Obj;
        assert.ok(
          selects((pdb.selector as Obj).matchLabels as Record<string, string>, d),
          `${n} PDB`,
        );
      }
      if (name === 'production')
        assert.ok(
          Number(
            (find(objects, 'HorizontalPodAutoscaler', 'groundwork-serve').spec as Obj).minReplicas,
          ) >= 2,
        );
    });

    test('NetworkPolicy: deny by default; serve reachable from the ingress controller (and Prometheus); egress to DNS, PostgreSQL, Redis, SMTP and HTTPS only', () => {
      const policies = objects
        .filter((o) => o.kind === 'NetworkPolicy')
        .map((o) => ({ name: o.metadata.name, spec: o.spec as Obj }));
      const deny = policies.find((p) => p.name === 'groundwork-default-deny');
      assert.deepEqual(deny?.spec.policyTypes, ['Ingress', 'Egress']);
      assert.ok(!deny?.spec.ingress && !deny?.spec.egress, 'allows nothing');
      const peers = new Set<string>();
      for (const p of policies)
        for (const rule of (p.spec.ingress as Obj[] | undefined) ?? [])
          for (const from of rule.from as Obj[]) {
            const ns = ((from.namespaceSelector as Obj).matchLabels as Record<string, string>)[
              'kubernetes.io/metadata.name'
            ];
            peers.add(`${p.name}:${String(ns)}`);
            assert.ok(!from.ipBlock, `${p.name}: no ingress by address`);
          }
      assert.deepEqual([...peers].sort(), [
        'groundwork-metrics-scrape:monitoring',
        'groundwork-serve-ingress:ingress-nginx',
      ]);
      const serveIngress = policies.find((p) => p.name === 'groundwork-serve-ingress');
      assert.deepEqual((serveIngress?.spec.podSelector as Obj).matchLabels, {
        'app.kubernetes.io/name': 'groundwork',
        'app.kubernetes.io/component': 'serve',
      });
      const ports = policies
        .flatMap((p) => (p.spec.egress as Obj[] | undefined) ?? [])
        .flatMap((rule) => (rule.ports as Obj[]).map((x) => Number(x.port)));
      assert.deepEqual(
        [...new Set(ports)].sort((a, b) => a - b),
        [25, 53, 443, 465, 587, 5432, 6379],
      );
      const open = policies
        .flatMap((p) => (p.spec.egress as Obj[] | undefined) ?? [])
        .flatMap((rule) => rule.to as Obj[])
        .filter((to) => (to.ipBlock as Obj | undefined)?.cidr === '0.0.0.0/0');
      for (const to of open)
        assert.ok(
          ((to.ipBlock as Obj).except as string[]).includes('169.254.169.254/32'),
          'no cloud metadata',
        );
    });

    test(`images: ${name === 'production' ? 'a pinned release, never latest' : 'named by the overlay'}`, () => {
      for (const c of workloads.flatMap(containersOf)) {
        const image = String(c.image);
        if (name === 'base') {
          assert.equal(image, 'groundwork', 'the base names the image; overlays pin it');
          continue;
        }
        assert.match(image, /^[a-z0-9.-]+(\/[a-z0-9._-]+)+(:[\w.-]+|@sha256:[a-f0-9]{64})$/, image);
        if (name === 'production') {
          assert.doesNotMatch(image, /:latest$/, image);
          assert.match(
            image,
            /(:v?\d+\.\d+\.\d+[\w.-]*|@sha256:[a-f0-9]{64})$/,
            `${image}: a version or digest`,
          );
        }
        assert.equal(c.imagePullPolicy, 'IfNotPresent');
      }
    });

    if (name !== 'base')
      test('APP_ENV is the overlay’s environment', () => {
        assert.equal(config.APP_ENV, name);
        assert.ok(config.PUBLIC_URL?.startsWith('https://'), 'PUBLIC_URL is https');
      });
  });
}

test('every overlay in deploy/k8s/overlays is rendered and checked above', () => {
  const overlays = readdirSync(join(K8S, 'overlays')).sort();
  assert.deepEqual(
    overlays,
    Object.keys(TARGETS)
      .filter((t) => t !== 'base')
      .sort(),
  );
});
