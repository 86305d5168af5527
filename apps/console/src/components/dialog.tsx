import { useEffect, useId, useRef, type ReactNode } from 'react';

/**
 * A modal dialog on the native <dialog> element: the page behind it is inert, focus moves into it
 * (to the element with autoFocus, if any) and Escape closes it. Render it only while it is open.
 */
export function Dialog({
  title,
  onClose,
  children,
}: {
  title: string;
  onClose: () => void;
  children: ReactNode;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  const opener = useRef<Element | null>(null);
  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    opener.current = document.activeElement;
    if (!dialog.open) dialog.showModal();
    return () => {
      dialog.close();
      // Give focus back to the control that opened the dialog, if it is still there.
      if (opener.current instanceof HTMLElement && opener.current.isConnected) opener.current.focus();
    };
  }, []);
  return (
    <dialog
      ref={ref}
      className="dialog"
      aria-labelledby={titleId}
      onCancel={(event) => {
        event.preventDefault();
        onClose();
      }}
    >
      <h2 id={titleId}>{title}</h2>
      {children}
    </dialog>
  );
}

/**
 * A dialog's buttons: Cancel, then the dialog's own action (`children`). `focusCancel`: Cancel has
 * the focus when the dialog opens, for actions that cannot be undone by a stray Enter.
 */
export function DialogButtons({
  onCancel,
  focusCancel = false,
  children,
}: {
  onCancel: () => void;
  focusCancel?: boolean;
  children: ReactNode;
}) {
  return (
    <div className="dialog__buttons">
      <button type="button" autoFocus={focusCancel} onClick={onCancel}>
        Cancel
      </button>
      {children}
    </div>
  );
}
