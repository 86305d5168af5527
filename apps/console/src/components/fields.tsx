import type { InputHTMLAttributes, ReactNode } from 'react';

type InputProps = Omit<InputHTMLAttributes<HTMLInputElement>, 'id' | 'onChange' | 'value'>;

/**
 * A labelled input, with a hint under it that an error replaces (then announced, and the input
 * marked invalid). `onChange` gets the new text.
 */
export function TextField({
  id,
  label,
  value,
  onChange,
  hint,
  error,
  ...input
}: {
  id: string;
  label: ReactNode;
  value: string;
  onChange: (value: string) => void;
  hint?: string;
  error?: string | undefined;
} & InputProps) {
  const note = error ?? hint;
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <input
        id={id}
        value={value}
        aria-invalid={error ? true : undefined}
        aria-describedby={note === undefined ? undefined : `${id}-hint`}
        onChange={(e) => {
          onChange(e.target.value);
        }}
        {...input}
      />
      {note !== undefined && (
        <p id={`${id}-hint`} className={error ? 'field-error' : 'hint'} role={error ? 'alert' : undefined}>
          {note}
        </p>
      )}
    </div>
  );
}

/** One choice of a SelectField. */
export interface Choice {
  value: string;
  label: string;
}

/** A labelled select of `choices`; `onChange` gets the chosen value. */
export function SelectField({
  id,
  label,
  value,
  onChange,
  choices,
}: {
  id: string;
  label: string;
  value: string;
  onChange: (value: string) => void;
  choices: readonly Choice[];
}) {
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <select
        id={id}
        value={value}
        onChange={(e) => {
          onChange(e.target.value);
        }}
      >
        {choices.map((choice) => (
          <option key={choice.value} value={choice.value}>
            {choice.label}
          </option>
        ))}
      </select>
    </div>
  );
}
