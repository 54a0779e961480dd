import type { z } from 'zod';

/** A zod error as one line naming each offending field: `email: Invalid email; phone: …`. */
export function describeIssues(error: z.ZodError, wholeValue = ''): string {
  return error.issues.map((issue) => `${issue.path.join('.') || wholeValue}: ${issue.message}`).join('; ');
}
