import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { MailHarness } from '../helpers/mail.ts';
import { bearer, createUser, signIn, startIdentityHarness } from '../helpers/identity.ts';

/** The longest password the policy can be set to accept (PASSWORD_MAX_LENGTH's maximum). */
const MAX = 1_024;
/** The longest the event loop may stay busy on one request. */
const BLOCK_LIMIT_MS = 50;

const random = (alphabet: string) =>
  Array.from({ length: MAX }, () => alphabet[randomInt(alphabet.length)]).join('');
const cycle = (unit: string) =>
  [...unit.repeat(Math.ceil(MAX / [...unit].length))].slice(0, MAX).join('');

/** Inputs zxcvbn is slowest on (measured: hundreds of ms at 64 characters, seconds at 128). */
const ADVERSARIAL: Record<string, string> = {
  'random printable': random(
    Array.from({ length: 94 }, (_, i) => String.fromCharCode(33 + i)).join(''),
  ),
  'random digits': random('0123456789'),
  'random l33t characters': random('4@83!1|05$7+9()'),
  'repeated character': 'a'.repeat(MAX),
  'repeated digits': cycle('1234567890'),
  dates: cycle('19901231'),
  'dictionary-word chain': cycle('passwordloveprincessdragonmonkey'),
  'l33t words': cycle('p@55w0rd1337h4x0r'),
  'keyboard walk': cycle('qwertyuiopasdfghjkl'),
  'astral characters (2 UTF-16 units each)': cycle('😀🎉🐙🚀'),
  'CJK and digits': cycle('密码1234安全'),
};

interface Block {
  /** CPU time this thread spent in the longest stretch without an event-loop turn. */
  cpuMs: number;
  /** Wall time of the longest such stretch (with the machine's scheduling noise). */
  wallMs: number;
}

const cpuNow = () => {
  const { user, system } = process.threadCpuUsage();
  return (user + system) / 1_000;
};

/**
 * How long the event loop went without a turn while `work` ran: a 1 ms timer chain; between two
 * ticks, the main thread's own CPU time is what blocked the loop (the wall time also counts the
 * time the OS gave the core to others, which on a shared machine is tens of milliseconds).
 */
async function blockDuring(work: () => Promise<void>): Promise<Block> {
  const worst: Block = { cpuMs: 0, wallMs: 0 };
  let running = true;
  let lastWall = performance.now();
  let lastCpu = cpuNow();
  const tick = () => {
    const wall = performance.now();
    const cpu = cpuNow();
    worst.cpuMs = Math.max(worst.cpuMs, cpu - lastCpu);
    worst.wallMs = Math.max(worst.wallMs, wall - lastWall);
    lastWall = wall;
    lastCpu = cpu;
    if (running) timer = setTimeout(tick, 1);
  };
  let timer = setTimeout(tick, 1);
  try {
    await work();
  } finally {
    running = false;
    clearTimeout(timer);
  }
  return worst;
}

describe('identity: the password-strength check never blocks the event loop', () => {
  let h: MailHarness;
  before(async () => {
    h = await startIdentityHarness({ PASSWORD_MAX_LENGTH: String(MAX) });
  });
  after(() => h.close());

  test(`regression (a long password kept the event loop busy for seconds): password change with ${MAX}-character adversarial passwords blocks the loop under ${BLOCK_LIMIT_MS} ms each`, async () => {
    const user = await createUser(h);
    const { accessToken } = await signIn(h.app, user);
    let current = user.password;
    for (const [name, password] of Object.entries(ADVERSARIAL)) {
      assert.equal([...password].length, MAX, name);
      let status = 0;
      let body = '';
      const block = await blockDuring(async () => {
        const res = await h.app.inject({
          method: 'POST',
          url: '/api/v1/auth/password/change',
          payload: { currentPassword: current, newPassword: password },
          headers: bearer(accessToken),
        });
        status = res.statusCode;
        body = res.body;
      });
      assert.ok([204, 422].includes(status), `${name}: ${status} ${body}`);
      if (status === 204) current = password;
      assert.ok(
        block.cpuMs < BLOCK_LIMIT_MS,
        `${name}: event loop blocked ${block.cpuMs.toFixed(1)} ms of CPU (${block.wallMs.toFixed(1)} ms wall)`,
      );
    }
  });

  test(`register with a ${MAX}-character password block the loop under ${BLOCK_LIMIT_MS} ms`, async () => {
    const password = ADVERSARIAL['random printable'] as string;
    let status = 0;
    const block = await blockDuring(async () => {
      const res = await h.app.inject({
        method: 'POST',
        url: '/api/v1/auth/register',
        payload: {
          email: `long${process.pid}@example.com`,
          username: `long_${process.pid}`,
          password,
        },
      });
      status = res.statusCode;
    });
    assert.equal(status, 202);
    assert.ok(
      block.cpuMs < BLOCK_LIMIT_MS,
      `register: event loop blocked ${block.cpuMs.toFixed(1)} ms of CPU (${block.wallMs.toFixed(1)} ms wall)`,
    );
  });
});
