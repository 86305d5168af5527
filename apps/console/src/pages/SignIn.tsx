import type { User } from '@upc/protocol';
import { useState, type SubmitEvent } from 'react';
import { api, errorMessage, saveToken } from '../api.js';
import { TextField } from '../components/fields.js';

export function SignIn({ notice, onSignedIn }: { notice?: string; onSignedIn: (user: User) => void }) {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | undefined>(undefined);
  const [busy, setBusy] = useState(false);

  const submit = async (event: SubmitEvent<HTMLFormElement>) => {
    event.preventDefault();
    if (!username || !password) {
      setError('Enter your username and password.');
      return;
    }
    setBusy(true);
    setError(undefined);
    try {
      const answer = await api.login(username.trim(), password);
      saveToken(answer.token);
      onSignedIn(answer.user);
    } catch (e) {
      setError(errorMessage(e));
      setBusy(false);
    }
  };

  return (
    <main id="main" className="sign-in">
      <form
        className="card sign-in__form"
        onSubmit={(e) => void submit(e)}
        noValidate
        aria-labelledby="sign-in-title"
      >
        <h1 id="sign-in-title">Sign in to uPC</h1>
        {notice && !error && (
          <p className="notice" role="status">
            {notice}
          </p>
        )}
        {error && (
          <p className="form-error" role="alert">
            {error}
          </p>
        )}
        <TextField
          id="sign-in-username"
          label="Username"
          name="username"
          autoComplete="username"
          autoCapitalize="none"
          spellCheck={false}
          required
          autoFocus
          value={username}
          onChange={setUsername}
        />
        <TextField
          id="sign-in-password"
          label="Password"
          name="password"
          type="password"
          autoComplete="current-password"
          required
          value={password}
          onChange={setPassword}
        />
        <button
          type="submit"
          className="primary"
          disabled={busy}
          aria-describedby={busy ? 'sign-in-busy' : undefined}
        >
          Sign in
        </button>
        {busy && (
          <p id="sign-in-busy" className="muted" role="status">
            Signing in…
          </p>
        )}
      </form>
    </main>
  );
}
