import Handlebars from 'handlebars';
import type { Static, TSchema } from 'typebox';
import { Compile, type Validator } from 'typebox/compile';
import type { FieldError } from '../http/index.ts';
import { renderLayout } from './layout.ts';

/** At most `max` messages within `windowSeconds` (a sliding window over the delivery records). */
export interface SendLimit {
  readonly max: number;
  readonly windowSeconds: number;
}

/** Send limits of a template, checked before a message is stored or enqueued. */
export interface MailLimits {
  /** Messages of this template to one address (compared case-insensitively). */
  readonly perRecipient?: SendLimit;
  /** Messages of this template triggered by one user (when the send names a `userId`). */
  readonly perUser?: SendLimit;
}

/** One locale of a template: Handlebars sources. `html` is the body, set inside the layout. */
export interface MailTemplateParts {
  /** One line; rendered without HTML escaping, then control characters become spaces. */
  readonly subject: string;
  /** HTML-escaped `{{var}}`; `{{url path}}` makes a link on `PUBLIC_URL`. */
  readonly html: string;
  /** Plain text, not escaped. */
  readonly text: string;
}

export interface MailTemplateSpec<S extends TSchema> {
  /** `area.what` or one word (letters, digits, `.`, `-`, `_`). */
  name: string;
  description: string;
  /** Schema of the variables; a send whose variables fail it is refused before anything is stored. */
  vars: S;
  /** Variables for `/dev/mail/preview/:template`, checked against `vars` at definition. */
  sample: Static<S>;
  /** Per locale (`en`, `de`, `pt-BR`); the configured default locale must be among them. */
  locales: Readonly<Record<string, MailTemplateParts>>;
  limits?: MailLimits;
}

/** What a template sees besides its variables, as `@publicUrl` and `@locale`. */
interface RenderData {
  publicUrl: string;
  locale: string;
}

type Render = (context: unknown, options: { data: RenderData }) => string;

interface CompiledParts {
  subject: Render;
  html: Render;
  text: Render;
}

/** A registered mail template: compiled parts per locale, its variable schema and limits. */
export interface MailTemplate<S extends TSchema = TSchema> {
  readonly name: string;
  readonly description: string;
  readonly vars: S;
  readonly sample: Static<S>;
  readonly limits: MailLimits;
  readonly locales: readonly string[];
  /** @internal */
  readonly validator: Validator;
  /** @internal */
  readonly compiled: ReadonlyMap<string, CompiledParts>;
}

/** A template rendered for one message. */
export interface RenderedMail {
  readonly locale: string;
  readonly subject: string;
  readonly html: string;
  readonly text: string;
}

// eslint-disable-next-line security/detect-unsafe-regex -- each repeated group starts with a separator its class excludes: linear
const NAME = /^[a-z][a-z0-9]*([._-][a-z0-9]+)*$/;
// eslint-disable-next-line security/detect-unsafe-regex -- fixed lengths
export const LOCALE = /^[a-z]{2}(-[A-Z]{2})?$/;
const MAX_SUBJECT = 250;
// C0 and C1 controls (CR, LF, NUL, tab...) and the Unicode line and paragraph separators.
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g;

/** One line of at most `max` characters: control characters become spaces, whitespace collapses. */
export function singleLine(value: string, max = MAX_SUBJECT): string {
  const line = value.replace(CONTROL, ' ').replace(/\s+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

/** A link on the public URL; only a path (one leading `/`) is accepted, never another origin. */
export function publicLink(publicUrl: string, path: unknown): string {
  if (
    typeof path !== 'string' ||
    !path.startsWith('/') ||
    path.startsWith('//') ||
    /[\s\\]/.test(path) ||
    path.length > 2_000
  ) {
    throw new Error('url: expects a path that starts with a single /');
  }
  return publicUrl + path;
}

const hb = Handlebars.create();
hb.registerHelper('url', (path: unknown, options: Handlebars.HelperOptions) =>
  publicLink((options.data as RenderData).publicUrl, path),
);

function compile(source: string, escape: boolean): Render {
  const template = hb.compile(source, {
    strict: true,
    noEscape: !escape,
    knownHelpers: { url: true },
    knownHelpersOnly: true,
  });
  return (context, options) => template(context, options);
}

function fail(name: string, message: string): never {
  throw new Error(`mail template ${name}: ${message}`);
}

function checkLimit(name: string, which: string, limit: SendLimit | undefined): void {
  if (limit === undefined) return;
  if (!Number.isInteger(limit.max) || limit.max < 1) fail(name, `${which}.max must be >= 1`);
  if (
    !Number.isInteger(limit.windowSeconds) ||
    limit.windowSeconds < 1 ||
    limit.windowSeconds > 31 * 86_400
  )
    fail(name, `${which}.windowSeconds must be 1..2678400`);
}

/**
 * Declares a mail template: its variables (TypeBox), sample data, parts per locale and send
 * limits. Every locale is compiled and rendered with the sample here, so a broken template fails
 * at start-up rather than in a worker.
 */
export function defineMailTemplate<S extends TSchema>(spec: MailTemplateSpec<S>): MailTemplate<S> {
  const { name } = spec;
  if (!NAME.test(name) || name.length > 100) fail(name, 'name must be like `area.what`');
  const locales = Object.keys(spec.locales);
  if (locales.length === 0) fail(name, 'needs at least one locale');
  checkLimit(name, 'perRecipient', spec.limits?.perRecipient);
  checkLimit(name, 'perUser', spec.limits?.perUser);
  const compiled = new Map<string, CompiledParts>();
  for (const locale of locales) {
    if (!LOCALE.test(locale)) fail(name, `locale ${locale} must be like en or pt-BR`);
    const parts = spec.locales[locale] as MailTemplateParts;
    if (/[\r\n]/.test(parts.subject)) fail(name, `the ${locale} subject must be one line`);
    compiled.set(locale, {
      subject: compile(parts.subject, false),
      html: compile(parts.html, true),
      text: compile(parts.text, false),
    });
  }
  const validator = Compile(spec.vars);
  const template: MailTemplate<S> = {
    name,
    description: spec.description,
    vars: spec.vars,
    sample: spec.sample,
    limits: spec.limits ?? {},
    locales,
    validator,
    compiled,
  };
  if (!validator.Check(spec.sample)) {
    const errors = varsErrors(template, spec.sample);
    fail(
      name,
      `the sample does not match vars: ${errors.map((e) => `${e.path} ${e.message}`).join('; ')}`,
    );
  }
  for (const locale of locales) {
    try {
      const rendered = renderMail(template, locale, spec.sample, 'https://example.com');
      if (rendered.subject === '') fail(name, `the ${locale} subject renders empty`);
    } catch (error) {
      fail(name, `the ${locale} parts do not render the sample: ${(error as Error).message}`);
    }
  }
  return template;
}

/** Field errors of variables that fail the template's schema (paths under `/vars`). */
export function varsErrors(template: MailTemplate, vars: unknown): FieldError[] {
  if (template.validator.Check(vars)) return [];
  return template.validator
    .Errors(vars)
    .map((e) => ({ path: `/vars${e.instancePath}`, message: e.message }));
}

/** The template's locale for a requested one: exact, then its language, then `fallback`. */
export function resolveLocale(
  template: MailTemplate,
  requested: string | null | undefined,
  fallback: string,
): string {
  if (requested) {
    if (template.compiled.has(requested)) return requested;
    const language = requested.split('-')[0] ?? '';
    if (template.compiled.has(language)) return language;
  }
  return fallback;
}

/** Renders a template in one of its locales (variables already checked against its schema). */
export function renderMail(
  template: MailTemplate,
  locale: string,
  vars: unknown,
  publicUrl: string,
): RenderedMail {
  const parts = template.compiled.get(locale);
  if (!parts) throw new Error(`mail template ${template.name} has no locale ${locale}`);
  const data = { publicUrl, locale };
  const subject = singleLine(parts.subject(vars, { data }));
  const html = renderLayout({ locale, subject, body: parts.html(vars, { data }) });
  const text = `${parts.text(vars, { data }).replace(/\r\n?/g, '\n').trim()}\n`;
  return { locale, subject, html, text };
}
