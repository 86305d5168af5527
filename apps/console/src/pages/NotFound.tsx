import { Link } from '../router.js';
import { PageHeading } from './PageHeading.js';

export function NotFound() {
  return (
    <>
      <PageHeading title="Page not found" />
      <p>
        There is no page at this address. <Link to="/">Go to the start page</Link>.
      </p>
    </>
  );
}
