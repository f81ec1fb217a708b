// zod schemas shared by every domain's routes.
import { z } from 'zod';

/** Body of every error answer. */
export const errorSchema = z.object({
  error: z.string().describe('machine-readable code, e.g. not_found, bad_request, redis_unavailable'),
  message: z.string().describe('what went wrong, for humans'),
});
export type ErrorBody = z.infer<typeof errorSchema>;
