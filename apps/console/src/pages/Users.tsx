import { Password, Username, type User } from '@upc/protocol';
import { useId, useState, type SubmitEvent } from 'react';
import { api, errorMessage } from '../api.js';
import { Dialog, DialogButtons } from '../components/dialog.js';
import { ListPager, ListSection } from '../components/list.js';
import { ErrorState, Loading, TableScroll } from '../components/states.js';
import { Bytes, RelativeTime } from '../components/time.js';
import { formatNumber } from '../format.js';
import { useAsync } from '../hooks.js';
import { PageHeading } from './PageHeading.js';

const PAGE_SIZE = 20;

type Action = { kind: 'reset'; user: User } | { kind: 'delete'; user: User };

/** The first problem zod finds with `value`, as a sentence, or undefined when it is fine. */
function problem(schema: typeof Username, value: string): string | undefined {
  const result = schema.safeParse(value);
  return result.success ? undefined : result.error.issues[0]?.message;
}

export function Users({ me }: { me: User }) {
  const users = useAsync(() => api.listUsers(), []);
  const [query, setQuery] = useState('');
  const [page, setPage] = useState(1);
  const [action, setAction] = useState<Action | undefined>(undefined);
  const [message, setMessage] = useState<{ text: string; error: boolean } | undefined>(undefined);
  const [busyId, setBusyId] = useState<string | undefined>(undefined);

  const all = users.data ?? [];
  const needle = query.trim().toLowerCase();
  const matching = needle ? all.filter((u) => u.username.includes(needle)) : all;
  const pages = Math.max(1, Math.ceil(matching.length / PAGE_SIZE));
  const current = Math.min(page, pages);
  const shown = matching.slice((current - 1) * PAGE_SIZE, current * PAGE_SIZE);

  const toggle = async (user: User) => {
    setBusyId(user.id);
    setMessage(undefined);
    try {
      await api.updateUser(user.id, { disabled: !user.disabled });
      setMessage({ text: `${user.disabled ? 'Enabled' : 'Disabled'} ${user.username}.`, error: false });
      users.reload();
    } catch (e) {
      setMessage({
        text: `Could not ${user.disabled ? 'enable' : 'disable'} ${user.username}: ${errorMessage(e)}`,
        error: true,
      });
    } finally {
      setBusyId(undefined);
    }
  };

  return (
    <>
      <PageHeading title="Users" />

      <CreateUser
        onCreated={(user) => {
          setMessage({ text: `Created user ${user.username}.`, error: false });
          users.reload();
        }}
      />

      <ListSection
        id="users"
        title="All users"
        search={{
          label: 'Search users',
          value: query,
          onChange: (value) => {
            setQuery(value);
            setPage(1);
          },
        }}
        notice={
          message && (
            <p className={message.error ? 'form-error' : 'notice'} role={message.error ? 'alert' : 'status'}>
              {message.text}
            </p>
          )
        }
        state={users}
        what="users"
        empty={
          matching.length === 0
            ? all.length === 0
              ? 'There are no users yet.'
              : `No user’s name contains “${query.trim()}”.`
            : null
        }
      >
        <TableScroll label="Users (scrollable)">
          <table aria-label="Users" className="data-table">
            <thead>
              <tr>
                <th scope="col">Username</th>
                <th scope="col">Role</th>
                <th scope="col">Status</th>
                <th scope="col">Created</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {shown.map((user) => (
                <tr key={user.id}>
                  <td>{user.username}</td>
                  <td>{user.role === 'admin' ? 'Admin' : 'User'}</td>
                  <td>
                    <span className={`badge ${user.disabled ? 'badge--off' : 'badge--on'}`}>
                      {user.disabled ? 'Disabled' : 'Active'}
                    </span>
                    {user.id === me.id && <span className="muted"> (you)</span>}
                  </td>
                  <td>
                    <RelativeTime iso={user.createdAt} />
                  </td>
                  <td>
                    <div className="row-actions">
                      <button
                        type="button"
                        aria-label={`${user.disabled ? 'Enable' : 'Disable'} ${user.username}`}
                        disabled={busyId === user.id}
                        onClick={() => void toggle(user)}
                      >
                        {user.disabled ? 'Enable' : 'Disable'}
                      </button>
                      <button
                        type="button"
                        aria-label={`Reset password for ${user.username}`}
                        onClick={() => {
                          setMessage(undefined);
                          setAction({ kind: 'reset', user });
                        }}
                      >
                        Reset password
                      </button>
                      <button
                        type="button"
                        className="danger"
                        aria-label={`Delete ${user.username}`}
                        onClick={() => {
                          setMessage(undefined);
                          setAction({ kind: 'delete', user });
                        }}
                      >
                        Delete
                      </button>
                    </div>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableScroll>
        <ListPager label="Pages of users" current={current} pages={pages} onPage={setPage}>
          Page {current} of {pages} · {formatNumber(matching.length)}{' '}
          {matching.length === 1 ? 'user' : 'users'}
        </ListPager>
      </ListSection>

      {action?.kind === 'reset' && (
        <ResetPassword
          user={action.user}
          onClose={(done) => {
            setAction(undefined);
            if (done) setMessage({ text: `Set a new password for ${action.user.username}.`, error: false });
          }}
        />
      )}
      {action?.kind === 'delete' && (
        <DeleteUser
          user={action.user}
          onClose={(done) => {
            setAction(undefined);
            if (done) {
              setMessage({ text: `Deleted ${action.user.username} and their workspaces.`, error: false });
              users.reload();
            }
          }}
        />
      )}
    </>
  );
}

function CreateUser({ onCreated }: { onCreated: (user: User) => void }) {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [role, setRole] = useState<'user' | 'admin'>('user');
  const [errors, setErrors] = useState<{ username?: string; password?: string; form?: string }>({});
  const [busy, setBusy] = useState(false);

  const submit = async (event: SubmitEvent<HTMLFormElement>) => {
    event.preventDefault();
    const found = { username: problem(Username, username), password: problem(Password, password) };
    if (found.username || found.password) {
      setErrors(found);
      return;
    }
    setErrors({});
    setBusy(true);
    try {
      const user = await api.createUser({ username, password, role });
      setUsername('');
      setPassword('');
      setRole('user');
      onCreated(user);
    } catch (e) {
      setErrors({ form: errorMessage(e) });
    } finally {
      setBusy(false);
    }
  };

  return (
    <section aria-labelledby="create-heading" className="section">
      <h2 id="create-heading">Create user</h2>
      <form className="card form-grid" onSubmit={(e) => void submit(e)} noValidate>
        {errors.form && (
          <p className="form-error form-grid__wide" role="alert">
            {errors.form}
          </p>
        )}
        <div className="field">
          <label htmlFor="new-username">New username</label>
          <input
            id="new-username"
            autoComplete="off"
            autoCapitalize="none"
            spellCheck={false}
            required
            value={username}
            aria-invalid={errors.username ? true : undefined}
            aria-describedby="new-username-hint"
            onChange={(e) => {
              setUsername(e.target.value);
            }}
          />
          <p id="new-username-hint" className={errors.username ? 'field-error' : 'hint'}>
            {errors.username
              ? `Username ${errors.username}.`
              : '2–32 characters: a–z first, then a–z, 0–9, . _ -'}
          </p>
        </div>
        <div className="field">
          <label htmlFor="new-password">New password</label>
          <input
            id="new-password"
            type="password"
            autoComplete="new-password"
            required
            value={password}
            aria-invalid={errors.password ? true : undefined}
            aria-describedby="new-password-hint"
            onChange={(e) => {
              setPassword(e.target.value);
            }}
          />
          <p id="new-password-hint" className={errors.password ? 'field-error' : 'hint'}>
            {errors.password ? `Password ${errors.password}.` : 'At least 8 characters.'}
          </p>
        </div>
        <div className="field">
          <label htmlFor="new-role">Role</label>
          <select
            id="new-role"
            value={role}
            onChange={(e) => {
              setRole(e.target.value === 'admin' ? 'admin' : 'user');
            }}
          >
            <option value="user">User</option>
            <option value="admin">Admin</option>
          </select>
        </div>
        <div className="form-grid__submit">
          <button type="submit" className="primary" disabled={busy}>
            Create user
          </button>
        </div>
      </form>
    </section>
  );
}

function ResetPassword({ user, onClose }: { user: User; onClose: (done: boolean) => void }) {
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const id = useId();

  const submit = async (event: SubmitEvent<HTMLFormElement>) => {
    event.preventDefault();
    const found = problem(Password, password);
    if (found) {
      setError(`Password ${found}.`);
      return;
    }
    setBusy(true);
    setError(undefined);
    try {
      await api.resetPassword(user.id, password);
      onClose(true);
    } catch (e) {
      setError(errorMessage(e));
      setBusy(false);
    }
  };

  return (
    <Dialog
      title={`Reset password for ${user.username}`}
      onClose={() => {
        onClose(false);
      }}
    >
      <form onSubmit={(e) => void submit(e)} noValidate>
        <p>
          {user.username} signs in with the new password from now on. Tokens they already hold keep working
          until they sign out or the tokens expire.
        </p>
        <div className="field">
          <label htmlFor={`${id}-password`}>New password for {user.username}</label>
          <input
            id={`${id}-password`}
            type="password"
            autoComplete="new-password"
            autoFocus
            required
            value={password}
            aria-invalid={error ? true : undefined}
            aria-describedby={`${id}-hint`}
            onChange={(e) => {
              setPassword(e.target.value);
            }}
          />
          <p id={`${id}-hint`} className={error ? 'field-error' : 'hint'} role={error ? 'alert' : undefined}>
            {error ?? 'At least 8 characters.'}
          </p>
        </div>
        <DialogButtons
          onCancel={() => {
            onClose(false);
          }}
        >
          <button type="submit" className="primary" disabled={busy}>
            Set password
          </button>
        </DialogButtons>
      </form>
    </Dialog>
  );
}

function DeleteUser({ user, onClose }: { user: User; onClose: (done: boolean) => void }) {
  const workspaces = useAsync(() => api.listWorkspaces({ ownerId: user.id }), [user.id]);
  const [typed, setTyped] = useState('');
  const [error, setError] = useState<string | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const id = useId();
  const list = workspaces.data;
  const confirmed = typed.trim() === user.username && list !== undefined;

  const submit = async (event: SubmitEvent<HTMLFormElement>) => {
    event.preventDefault();
    if (!confirmed) return;
    setBusy(true);
    setError(undefined);
    try {
      await api.deleteUser(user.id);
      onClose(true);
    } catch (e) {
      setError(errorMessage(e));
      setBusy(false);
    }
  };

  const total = list?.reduce((sum, w) => sum + w.storedBytes, 0) ?? 0;
  return (
    <Dialog
      title={`Delete ${user.username}?`}
      onClose={() => {
        onClose(false);
      }}
    >
      <form onSubmit={(e) => void submit(e)} noValidate>
        {list === undefined ? (
          workspaces.error !== undefined ? (
            <ErrorState
              what={`${user.username}’s workspaces`}
              error={workspaces.error}
              retry={workspaces.reload}
            />
          ) : (
            <Loading what={`${user.username}’s workspaces`} />
          )
        ) : (
          <div id={`${id}-what`} className="warning">
            {list.length === 0 ? (
              <p>
                <strong>This deletes the user {user.username}.</strong> They have no workspaces. This cannot
                be undone.
              </p>
            ) : (
              <p>
                <strong>
                  This deletes the user {user.username} and their{' '}
                  {list.length === 1 ? '1 workspace' : `${formatNumber(list.length)} workspaces`}
                </strong>{' '}
                (<Bytes value={total} /> stored), with every version and file in{' '}
                {list.length === 1 ? 'it' : 'them'}. This cannot be undone.
              </p>
            )}
            {list.length > 0 && (
              <ul className="compact-list">
                {list.slice(0, 10).map((w) => (
                  <li key={w.id}>
                    {w.name} (<Bytes value={w.storedBytes} />)
                  </li>
                ))}
                {list.length > 10 && <li>and {formatNumber(list.length - 10)} more</li>}
              </ul>
            )}
          </div>
        )}
        <div className="field">
          <label htmlFor={`${id}-confirm`}>Type {user.username} to confirm</label>
          <input
            id={`${id}-confirm`}
            autoComplete="off"
            autoCapitalize="none"
            spellCheck={false}
            autoFocus
            value={typed}
            aria-describedby={list !== undefined ? `${id}-what` : undefined}
            onChange={(e) => {
              setTyped(e.target.value);
            }}
          />
        </div>
        {error && (
          <p className="form-error" role="alert">
            {error}
          </p>
        )}
        <DialogButtons
          onCancel={() => {
            onClose(false);
          }}
        >
          <button type="submit" className="danger" disabled={!confirmed || busy}>
            Delete user
          </button>
        </DialogButtons>
      </form>
    </Dialog>
  );
}
