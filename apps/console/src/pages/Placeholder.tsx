import { PageHeading } from './PageHeading.js';

/** A page of the console that is routed already and built in a later step. */
export function Placeholder({ title, about }: { title: string; about: string }) {
  return (
    <>
      <PageHeading title={title} />
      <div className="card placeholder">
        <p>
          <strong>Coming next.</strong> {about}
        </p>
      </div>
    </>
  );
}
