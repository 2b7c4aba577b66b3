import type { ContentProblem, ContentRules, ContentToValidate } from './types.ts';

const MIB = 1024 * 1024;
export const MB = MIB;

/** The checks every platform's rules share: text length, media count, types, sizes, ratio, duration. */
export function checkRules(
  platform: string,
  rules: ContentRules,
  content: ContentToValidate,
): ContentProblem[] {
  const problems: ContentProblem[] = [];
  const textLength = [...content.text].length;
  if (textLength > rules.maxTextLength)
    problems.push({
      code: 'CONTENT_REJECTED',
      rule: `${platform}.text.max_length`,
      message: `${platform} takes at most ${rules.maxTextLength} characters of text (this has ${textLength}).`,
    });
  const count = content.media.length;
  if (count < rules.minMedia)
    problems.push({
      code: 'MEDIA_REJECTED',
      rule: `${platform}.media.min_count`,
      message: `${platform} needs at least ${rules.minMedia} media file${rules.minMedia === 1 ? '' : 's'}.`,
    });
  if (count > rules.maxMedia)
    problems.push({
      code: 'MEDIA_REJECTED',
      rule: `${platform}.media.max_count`,
      message: `${platform} takes at most ${rules.maxMedia} media files (this has ${count}).`,
    });
  const kinds = new Set(content.media.map((m) => m.contentType.split('/')[0]));
  if (!rules.mixedMedia && kinds.size > 1)
    problems.push({
      code: 'MEDIA_REJECTED',
      rule: `${platform}.media.mixed`,
      message: `${platform} does not mix images and videos in one post.`,
    });
  content.media.forEach((m, i) => {
    const n = i + 1;
    if (!rules.mediaTypes.includes(m.contentType)) {
      problems.push({
        code: 'MEDIA_REJECTED',
        rule: `${platform}.media.type`,
        message: `Media ${n}: ${platform} does not take ${m.contentType} (accepted: ${rules.mediaTypes.join(', ')}).`,
      });
      return;
    }
    const video = m.contentType.startsWith('video/');
    const max = video ? rules.maxVideoBytes : rules.maxImageBytes;
    if (m.size > max)
      problems.push({
        code: 'MEDIA_REJECTED',
        rule: `${platform}.media.max_bytes`,
        message: `Media ${n}: ${platform} takes ${video ? 'videos' : 'images'} up to ${Math.floor(max / MIB)} MiB.`,
      });
    if (rules.aspectRatio && m.width && m.height) {
      const ratio = m.width / m.height;
      if (ratio < rules.aspectRatio.min - 1e-9 || ratio > rules.aspectRatio.max + 1e-9)
        problems.push({
          code: 'MEDIA_REJECTED',
          rule: `${platform}.media.aspect_ratio`,
          message: `Media ${n}: ${platform} takes width/height ratios from ${rules.aspectRatio.min} to ${rules.aspectRatio.max} (this is ${ratio.toFixed(2)}).`,
        });
    }
    if (
      video &&
      rules.maxVideoDurationS !== null &&
      m.durationS !== null &&
      m.durationS > rules.maxVideoDurationS
    )
      problems.push({
        code: 'MEDIA_REJECTED',
        rule: `${platform}.media.max_duration`,
        message: `Media ${n}: ${platform} takes videos up to ${rules.maxVideoDurationS} s.`,
      });
  });
  return problems;
}

export const HOUR_MS = 3_600_000;
export const DAY_MS = 24 * HOUR_MS;
