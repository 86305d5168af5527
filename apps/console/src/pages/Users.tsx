import { Password, Username, type User } from '@upc/protocol';
import { useId, useState, type SubmitEvent } from 'react';
import { api, errorMessage } from '../api.js';
import { Dialog, DialogButtons } from '../components/dialog.js';
import { SelectField, TextField } from '../components/fields.js';
import { ServerListSection, useServerList } from '../components/list.js';
import { type Outcome, OutcomeNotice, Pending, TableScroll } from '../components/states.js';
import { Bytes, RelativeTime } from '../components/time.js';
import { formatNumber } from '../format.js';
import { useAsync } from '../hooks.js';
import { PageHeading } from './PageHeading.js';

const PAGE_SIZE = 20;
const ROLES = [
  { value: 'user', label: 'User' },
  { value: 'admin', label: 'Admin' },
];

type Action = { kind: 'reset'; user: User } | { kind: 'delete'; user: User };

/** The first problem zod finds with `value`, as a sentence, or undefined when it is fine. */
function problem(schema: typeof Username, value: string): string | undefined {
  const result = schema.safeParse(value);
  return result.success ? undefined : result.error.issues[0]?.message;
}

export function Users({ me }: { me: User }) {
  const list = useServerList((query) => api.listUsersPage(query), PAGE_SIZE);
  const [action, setAction] = useState<Action | undefined>(undefined);
  const [message, setMessage] = useState<Outcome | undefined>(undefined);
  const [busyId, setBusyId] = useState<string | undefined>(undefined);
  const reload = list.state.reload;

  const toggle = async (user: User) => {
    setBusyId(user.id);
    setMessage(undefined);
    try {
      await api.updateUser(user.id, { disabled: !user.disabled });
      setMessage({ text: `${user.disabled ? 'Enabled' : 'Disabled'} ${user.username}.`, error: false });
      reload();
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
          reload();
        }}
      />

      <ServerListSection
        id="users"
        title="All users"
        list={list}
        what="users"
        one="user"
        none="There are no users yet."
        noMatch="user’s name"
        notice={<OutcomeNotice outcome={message} />}
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
              {(list.state.data?.items ?? []).map((user) => (
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
      </ServerListSection>

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
              reload();
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
        <TextField
          id="new-username"
          label="New username"
          autoComplete="off"
          autoCapitalize="none"
          spellCheck={false}
          required
          value={username}
          onChange={setUsername}
          hint="2–32 characters: a–z first, then a–z, 0–9, . _ -"
          error={errors.username && `Username ${errors.username}.`}
        />
        <TextField
          id="new-password"
          label="New password"
          type="password"
          autoComplete="new-password"
          required
          value={password}
          onChange={setPassword}
          hint="At least 8 characters."
          error={errors.password && `Password ${errors.password}.`}
        />
        <SelectField
          id="new-role"
          label="Role"
          value={role}
          onChange={(value) => {
            setRole(value === 'admin' ? 'admin' : 'user');
          }}
          choices={ROLES}
        />
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
          {user.username} signs in with the new password from now on, and is signed out everywhere now: a PC
          they are working on keeps their unsaved changes until they sign in there again.
        </p>
        <TextField
          id={`${id}-password`}
          label={`New password for ${user.username}`}
          type="password"
          autoComplete="new-password"
          autoFocus
          required
          value={password}
          onChange={setPassword}
          hint="At least 8 characters."
          error={error}
        />
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
          <Pending state={workspaces} what={`${user.username}’s workspaces`} />
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
