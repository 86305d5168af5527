import { useEffect, useRef } from 'react';

let firstPage = true;

/**
 * The page's h1. It also sets the document title and, after an in-app navigation (not on the first
 * page load), takes focus, so that keyboard and screen-reader users start at the new page's top.
 */
export function PageHeading({ title }: { title: string }) {
  const ref = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    document.title = `${title} · uPC console`;
    if (firstPage) firstPage = false;
    else ref.current?.focus();
  }, [title]);
  return (
    <h1 ref={ref} tabIndex={-1} className="page-title">
      {title}
    </h1>
  );
}
