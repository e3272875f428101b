import type { AccessGrant } from '../config/http-config.ts';
import { HttpError } from './http-error.ts';

/** What everyone may do when no tokens are configured, and what public routes run with. */
export const OPEN_GRANT: AccessGrant = Object.freeze({ admin: true, properties: null });

/**
 * Decides who a request is from its token. With no tokens configured everything is open (the config
 * only allows that on loopback); otherwise a request without a known token is refused.
 */
export class AccessControl {
  constructor(private readonly tokens: ReadonlyMap<string, AccessGrant>) {}

  /** True when tokens are configured. */
  get enforced(): boolean {
    return this.tokens.size > 0;
  }

  /** The grant for a bearer header or an access_token query value; throws 401 UNAUTHORIZED. */
  grant(authorization: string, queryToken: string | null): AccessGrant {
    if (!this.enforced) return OPEN_GRANT;
    const m = /^Bearer\s+(\S+)$/i.exec(authorization);
    const token = m ? m[1] : queryToken;
    const grant = token ? this.tokens.get(token) : undefined;
    if (!grant) throw new HttpError(401, 'UNAUTHORIZED', 'a valid token is required (Authorization: Bearer TOKEN, or ?access_token=TOKEN)');
    return grant;
  }
}

/** True when the grant may see this property. */
export function canSee(grant: AccessGrant, propertyId: string): boolean {
  return grant.properties === null || grant.properties.has(propertyId);
}

/** Throws 403 FORBIDDEN unless the grant is an admin's. */
export function requireAdmin(grant: AccessGrant): void {
  if (!grant.admin) throw new HttpError(403, 'FORBIDDEN', 'this action needs the admin token');
}
