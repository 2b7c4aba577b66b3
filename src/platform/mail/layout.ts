import Handlebars from 'handlebars';

/** The HTML around every template's body: inline styles only (mail clients drop stylesheets). */
const LAYOUT = Handlebars.create().compile<{ locale: string; subject: string; body: string }>(
  `<!doctype html>
<html lang="{{locale}}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{subject}}</title>
</head>
<body style="margin:0;padding:0;background:#f4f4f5;">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="background:#f4f4f5;">
<tr><td align="center" style="padding:24px 12px;">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="max-width:600px;background:#ffffff;border-radius:6px;">
<tr><td style="padding:32px;font-family:-apple-system,BlinkMacSystemFont,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;font-size:16px;line-height:1.5;color:#18181b;">
{{{body}}}
</td></tr>
</table>
</td></tr>
</table>
</body>
</html>
`,
  { strict: true },
);

/** Wraps a rendered (already escaped) body in the layout; the subject is escaped here. */
export function renderLayout(parts: { locale: string; subject: string; body: string }): string {
  return LAYOUT(parts);
}
