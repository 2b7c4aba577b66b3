import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FastifyReply } from 'fastify';
import { HandlerDeadlines } from '../../src/platform/http/deadlines.ts';

function fakeReply() {
  const sent: unknown[] = [];
  const reply = {
    sent: false,
    raw: {
      headersSent: false,
      destroyed: false,
      destroy() {
        this.destroyed = true;
      },
    },
    send(body: unknown) {
      sent.push(body);
      this.sent = true;
    },
  };
  return { reply, sent, as: reply as unknown as FastifyReply };
}

test('the sweep answers requests past their deadline once, forgets answered ones, keeps the rest', (t) => {
  const deadlines = new HandlerDeadlines(1_000);
  t.after(() => deadlines.stop());
  const now = Date.now();
  const late = fakeReply();
  const answered = fakeReply();
  const streaming = fakeReply();
  deadlines.start(late.as);
  deadlines.start(answered.as);
  deadlines.start(streaming.as);
  answered.reply.sent = true;
  streaming.reply.raw.headersSent = true;
  const young = fakeReply();
  deadlines.start(young.as);

  deadlines.sweep(now + 500);
  assert.equal(late.sent.length, 0, 'not due yet');
  assert.equal(deadlines.size, 4, 'stops at the first entry not due');

  deadlines.finish(young.as);
  deadlines.sweep(now + 2_000);
  assert.equal(late.sent.length, 1);
  assert.equal((late.sent[0] as { code: string }).code, 'HANDLER_TIMEOUT');
  assert.equal(answered.sent.length, 0, 'an answered request is only forgotten');
  assert.equal(streaming.reply.raw.destroyed, true, 'a streaming response is ended');
  assert.equal(deadlines.size, 0);
  deadlines.sweep(now + 5_000);
  assert.equal(late.sent.length, 1, 'answered once');
});

test("a route's own handlerTimeoutMs (uploads) outlives the default deadline, and is kept too", (t) => {
  const deadlines = new HandlerDeadlines(1_000);
  t.after(() => deadlines.stop());
  const now = Date.now();
  const upload = fakeReply();
  const plain = fakeReply();
  deadlines.start(upload.as, 10_000);
  deadlines.start(plain.as);
  deadlines.sweep(now + 2_000);
  assert.equal(plain.sent.length, 1, 'the default deadline passed');
  assert.equal(upload.sent.length, 0, 'the route’s own deadline has not');
  assert.equal(deadlines.size, 1);
  deadlines.sweep(now + 11_000);
  assert.equal(upload.sent.length, 1);
  assert.match(String((upload.sent[0] as { detail: string }).detail), /10000 ms/);
  assert.equal(deadlines.size, 0);
});
