// The shell: skip link, header with navigation, theme toggle and the user, and the page for the
// current path. Pages are loaded on first visit, so the first load carries only the shell and the
// page asked for.
import { lazy, Suspense, useEffect, useState, type ComponentType } from 'react';
import { useAuth } from './auth';
import { Link, match, navigate, useLocation } from './router';
import { applyTheme, currentTheme } from './theme';
import type { Role } from './api/types';
import { LoginPage } from './pages/login/login-page';
import { Loading } from './components/ui';

type Params = Record<string, string>;
interface RouteDef {
  pattern: string;
  title: string;
  page: ComponentType<{ params: Params }>;
  /** Shown in the navigation, for this role and up. */
  nav?: Role;
}

// Each page module exports its component by name; the route gives the path's parameters.
const page = <T,>(load: () => Promise<T>, name: keyof T & string) =>
  lazy(async () => ({ default: (await load())[name] as unknown as ComponentType<{ params: Params }> }));

const routes: RouteDef[] = [
  { pattern: '/', title: 'Overview', nav: 'viewer', page: page(() => import('./pages/overview/overview-page'), 'OverviewPage') },
  { pattern: '/nodes', title: 'Nodes', nav: 'viewer', page: page(() => import('./pages/nodes/nodes-page'), 'NodesPage') },
  { pattern: '/nodes/:name', title: 'Node', page: page(() => import('./pages/node-detail/node-detail-page'), 'NodeDetailPage') },
  { pattern: '/events', title: 'Events', nav: 'viewer', page: page(() => import('./pages/events/events-page'), 'EventsPage') },
  { pattern: '/attackers/:ip', title: 'Attacker', page: page(() => import('./pages/attacker/attacker-page'), 'AttackerPage') },
  { pattern: '/sessions', title: 'Sessions', nav: 'viewer', page: page(() => import('./pages/sessions/sessions-page'), 'SessionsPage') },
  { pattern: '/sessions/:id', title: 'Session', page: page(() => import('./pages/sessions/session-page'), 'SessionPage') },
  { pattern: '/hpfeeds', title: 'hpfeeds', nav: 'admin', page: page(() => import('./pages/hpfeeds/hpfeeds-page'), 'HpfeedsPage') },
  { pattern: '/alerts', title: 'Alerts', nav: 'admin', page: page(() => import('./pages/alerts/alerts-page'), 'AlertsPage') },
  { pattern: '/users', title: 'Users', nav: 'admin', page: page(() => import('./pages/users/users-page'), 'UsersPage') },
  { pattern: '/account', title: 'Account', page: page(() => import('./pages/account/account-page'), 'AccountPage') },
  { pattern: '/tokens', title: 'Tokens', nav: 'admin', page: page(() => import('./pages/tokens/tokens-page'), 'TokensPage') },
  { pattern: '/audit', title: 'Audit log', nav: 'admin', page: page(() => import('./pages/audit/audit-page'), 'AuditPage') },
];

function ThemeToggle() {
  const [theme, setTheme] = useState(currentTheme());
  const next = theme === 'dark' ? 'light' : 'dark';
  return (
    <button
      type="button"
      className="ghost"
      aria-label={`Switch to ${next} theme`}
      title={`Switch to ${next} theme`}
      onClick={() => {
        applyTheme(next);
        setTheme(next);
      }}
    >
      {theme === 'dark' ? '☀' : '☾'}
    </button>
  );
}

export function App() {
  const auth = useAuth();
  const { path } = useLocation();
  const [menuOpen, setMenuOpen] = useState(false);
  useEffect(() => setMenuOpen(false), [path]);

  let found: { route: RouteDef; params: Params } | undefined;
  for (const route of routes) {
    const params = match(route.pattern, path);
    if (params) {
      found = { route, params };
      break;
    }
  }
  useEffect(() => {
    document.title = `${found ? found.route.title : 'Not found'} · Apiary`;
  }, [found?.route.title]);

  if (auth.session === undefined) return <Loading label="Loading the console" />;
  if (auth.session === null) return <LoginPage />;

  const user = auth.session.user;
  const Page = found?.route.page;
  return (
    <>
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <Link to="/" className="brand" aria-label="Apiary overview">
          <img src="/favicon.svg" alt="" width="22" height="22" /> Apiary
        </Link>
        <button type="button" className="ghost menu-button" aria-expanded={menuOpen} aria-controls="main-nav" onClick={() => setMenuOpen(!menuOpen)}>
          Menu
        </button>
        <nav id="main-nav" aria-label="Main" className={menuOpen ? 'open' : ''}>
          <ul>
            {routes
              .filter((r) => r.nav && auth.can(r.nav))
              .map((r) => {
                const active = r.pattern === '/' ? path === '/' : path === r.pattern || path.startsWith(`${r.pattern}/`);
                return (
                  <li key={r.pattern}>
                    <Link to={r.pattern} aria-current={active ? 'page' : undefined}>
                      {r.title}
                    </Link>
                  </li>
                );
              })}
          </ul>
        </nav>
        <div className="topbar-end">
          <ThemeToggle />
          <Link to="/account" className="user" aria-label={`Your account: ${user.username} (${user.role})`}>
            {user.username} <span className="role">{user.role}</span>
          </Link>
          <button
            type="button"
            onClick={async () => {
              await auth.logout();
              navigate('/');
            }}
          >
            Log out
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        <Suspense fallback={<Loading />}>
          {Page && found ? (
            <Page key={found.route.pattern} params={found.params} />
          ) : (
            <section>
              <h1>Not found</h1>
              <p>
                Nothing at <code>{path}</code>. <Link to="/">Back to the overview</Link>.
              </p>
            </section>
          )}
        </Suspense>
      </main>
    </>
  );
}
