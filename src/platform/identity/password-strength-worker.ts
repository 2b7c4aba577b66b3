import { ZxcvbnFactory } from '@zxcvbn-ts/core';
import { adjacencyGraphs, dictionary as commonWords } from '@zxcvbn-ts/language-common';
import { dictionary as englishWords, translations } from '@zxcvbn-ts/language-en';
import { parentPort } from 'node:worker_threads';

/** A job of the password-strength pool (see password-strength.ts). */
export interface StrengthJob {
  id: number;
  password: string;
  words: string[];
}

/** Its answer: the zxcvbn score and feedback, or why it failed. */
export type StrengthAnswer =
  | { id: number; score: number; warning: string | null; suggestions: string[] }
  | { id: number; error: string };

// Built once per thread (about half a second): the dictionaries never touch the main thread.
const zxcvbn = new ZxcvbnFactory({
  dictionary: { ...commonWords, ...englishWords },
  graphs: adjacencyGraphs,
  translations,
});

parentPort?.on('message', (job: StrengthJob) => {
  let answer: StrengthAnswer;
  try {
    const result = zxcvbn.check(job.password, job.words);
    answer = {
      id: job.id,
      score: result.score,
      warning: result.feedback.warning,
      suggestions: result.feedback.suggestions,
    };
  } catch (error) {
    answer = { id: job.id, error: error instanceof Error ? error.message : String(error) };
  }
  parentPort?.postMessage(answer);
});
parentPort?.postMessage('ready');
