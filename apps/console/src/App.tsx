import type { User } from '@upc/protocol';
import { useCallback, useEffect, useState } from 'react';
import { api, errorMessage, saveToken, setExpiredHandler } from './api.js';
import { useLiveSessions } from './events.js';
import { Link, navigate, usePath } from './router.js';
import { MyWorkspaces } from './pages/MyWorkspaces.js';
import { NotFound } from './pages/NotFound.js';
import { Audit } from './pages/Audit.js';
import { Overview } from './pages/Overview.js';
import { Pcs } from './pages/Pcs.js';
import { SignIn } from './pages/SignIn.js';
import { Users } from './pages/Users.js';
import { Workspace } from './pages/Workspace.js';
import { Workspaces } from './pages/Workspaces.js';

type Auth =
  | { state: 'checking' }
  | { state: 'unreachable'; error: unknown }
  | { state: 'signed-out'; notice?: string }
  | { state: 'signed-in'; user: User };

const ADMIN_NAV = [
  { to: '/', label: 'Overview' },
  { to: '/users', label: 'Users' },
  { to: '/workspaces', label: 'Workspaces' },
  { to: '/pcs', label: 'PCs' },
  { to: '/audit', label: 'Audit log' },
] as const;
const USER_NAV = [{ to: '/', label: 'My workspaces' }] as const;

export function App() {
  const [auth, setAuth] = useState<Auth>(() => (api.token ? { state: 'checking' } : { state: 'signed-out' }));
  const [attempt, setAttempt] = useState(0);

  const expire = useCallback(() => {
    saveToken(undefined);
    setAuth({ state: 'signed-out', notice: 'Your session has ended. Sign in again.' });
  }, []);
  useEffect(() => {
    setExpiredHandler(expire);
  }, [expire]);

  // A token from an earlier visit in this tab: find out whose it is (a 401 ends it through `expire`).
  useEffect(() => {
    if (auth.state !== 'checking') return;
    let current = true;
    api.me().then(
      (user) => {
        if (current) setAuth({ state: 'signed-in', user });
      },
      (error: unknown) => {
        if (current && api.token) setAuth({ state: 'unreachable', error });
      },
    );
    return () => {
      current = false;
    };
  }, [auth.state, attempt]);

  const signOut = async () => {
    try {
      await api.logout();
    } catch {
      // Signed out here either way; the token expires on the server in time.
    }
    saveToken(undefined);
    setAuth({ state: 'signed-out', notice: 'You have signed out.' });
    navigate('/');
  };

  switch (auth.state) {
    case 'checking':
      return (
        <main id="main" className="sign-in">
          <p role="status">Loading the console…</p>
        </main>
      );
    case 'unreachable':
      return (
        <main id="main" className="sign-in">
          <div className="card sign-in__form" role="alert">
            <h1>Cannot load the console</h1>
            <p>{errorMessage(auth.error)}</p>
            <div className="dialog__buttons">
              <button
                type="button"
                onClick={() => {
                  saveToken(undefined);
                  setAuth({ state: 'signed-out' });
                }}
              >
                Sign out
              </button>
              <button
                type="button"
                className="primary"
                onClick={() => {
                  setAuth({ state: 'checking' });
                  setAttempt((a) => a + 1);
                }}
              >
                Try again
              </button>
            </div>
          </div>
        </main>
      );
    case 'signed-out':
      return (
        <SignIn
          notice={auth.notice}
          onSignedIn={(user) => {
            setAuth({ state: 'signed-in', user });
          }}
        />
      );
    case 'signed-in':
      return <Shell user={auth.user} onSignOut={() => void signOut()} onExpired={expire} />;
  }
}

function Shell({ user, onSignOut, onExpired }: { user: User; onSignOut: () => void; onExpired: () => void }) {
  const path = usePath();
  const live = useLiveSessions(api.token, onExpired);
  const admin = user.role === 'admin';
  const nav = admin ? ADMIN_NAV : USER_NAV;

  const workspaceMatch = /^\/workspaces\/([^/]+)(?:\/versions\/([^/]+))?$/.exec(path);
  const workspaceId = workspaceMatch?.[1];
  const versionId = workspaceMatch?.[2];

  let page;
  if (workspaceId !== undefined)
    page = (
      <Workspace
        key={workspaceId}
        id={decodeURIComponent(workspaceId)}
        versionId={versionId === undefined ? undefined : decodeURIComponent(versionId)}
        me={user}
        live={live}
      />
    );
  else if (!admin) page = path === '/' ? <MyWorkspaces me={user} live={live} /> : <NotFound />;
  else if (path === '/') page = <Overview live={live} />;
  else if (path === '/users') page = <Users me={user} />;
  else if (path === '/workspaces') page = <Workspaces live={live} />;
  else if (path === '/pcs') page = <Pcs live={live} />;
  else if (path === '/audit') page = <Audit />;
  else page = <NotFound />;

  return (
    <>
      <a className="skip-link" href="#main">
        Skip to main content
      </a>
      <header className="top">
        <div className="top__inner">
          <Link to="/" className="brand">
            uPC <span className="brand__sub">console</span>
          </Link>
          <nav aria-label="Main" className="nav">
            <ul>
              {nav.map((item) => (
                <li key={item.to}>
                  <Link to={item.to}>{item.label}</Link>
                </li>
              ))}
            </ul>
          </nav>
          <div className="account">
            <span className="account__name" title={admin ? 'Admin' : 'User'}>
              {user.username}
              {admin && <span className="badge badge--admin">admin</span>}
            </span>
            <button type="button" onClick={onSignOut}>
              Sign out
            </button>
          </div>
        </div>
      </header>
      <main id="main" className="content">
        {page}
      </main>
    </>
  );
}
