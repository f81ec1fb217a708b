// The logged-in person: GET /api/v1/session at start, POST to log in, DELETE to log out. The
// session cookie is httpOnly; the console only ever sees the CSRF token and the user.
import { createContext, useContext, useEffect, type ReactNode } from 'react';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { api, ApiError, setCsrfToken, setUnauthorizedHandler } from './api/client';
import type { Role, SessionInfo } from './api/types';

const SESSION_KEY = ['session'];

async function fetchSession(): Promise<SessionInfo | null> {
  try {
    const s = await api<SessionInfo>('GET', '/session', undefined, { quiet401: true });
    setCsrfToken(s.csrf_token);
    return s;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      setCsrfToken(undefined);
      return null;
    }
    throw err;
  }
}

interface Auth {
  session: SessionInfo | null | undefined;
  login(username: string, password: string): Promise<void>;
  logout(): Promise<void>;
  /** The user's role reaches `need` (viewer < operator < admin). */
  can(need: Role): boolean;
}

const AuthContext = createContext<Auth | null>(null);
const rank: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };

export function AuthProvider({ children }: { children: ReactNode }) {
  const client = useQueryClient();
  const { data: session } = useQuery({ queryKey: SESSION_KEY, queryFn: fetchSession, staleTime: 60_000, retry: 1 });
  useEffect(() => {
    setUnauthorizedHandler(() => {
      setCsrfToken(undefined);
      client.setQueryData(SESSION_KEY, null);
    });
  }, [client]);
  const auth: Auth = {
    session,
    async login(username, password) {
      const s = await api<SessionInfo>('POST', '/session', { username, password }, { quiet401: true });
      setCsrfToken(s.csrf_token);
      // Nothing cached for another user may show; the session query itself stays observed.
      client.removeQueries({ predicate: (q) => q.queryKey[0] !== SESSION_KEY[0] });
      client.setQueryData(SESSION_KEY, s);
    },
    async logout() {
      try {
        await api('DELETE', '/session', undefined, { quiet401: true });
      } finally {
        setCsrfToken(undefined);
        client.setQueryData(SESSION_KEY, null);
        client.removeQueries({ predicate: (q) => q.queryKey[0] !== SESSION_KEY[0] });
      }
    },
    can(need) {
      return !!session && rank[session.user.role] >= rank[need];
    },
  };
  return <AuthContext.Provider value={auth}>{children}</AuthContext.Provider>;
}

export function useAuth(): Auth {
  const a = useContext(AuthContext);
  if (!a) throw new Error('useAuth outside AuthProvider');
  return a;
}
