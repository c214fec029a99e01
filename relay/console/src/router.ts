// Hash routes (#/queue, #/incidents/<id>): the server only ever serves index.html at one address.
import { useEffect, useState } from "preact/hooks";

export type Route = { page: "queue" } | { page: "homes" } | { page: "reports" } | { page: "incident"; id: string };

export function parseRoute(hash: string): Route {
  const path = hash.replace(/^#\/?/, "");
  if (path === "homes") return { page: "homes" };
  if (path === "reports") return { page: "reports" };
  const incident = /^incidents\/(.+)$/.exec(path);
  if (incident?.[1]) return { page: "incident", id: decodeURIComponent(incident[1]) };
  return { page: "queue" };
}

export const hrefFor = (route: Route): string => (route.page === "incident" ? `#/incidents/${encodeURIComponent(route.id)}` : `#/${route.page}`);

export function navigate(route: Route): void {
  location.hash = hrefFor(route);
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const onChange = () => setRoute(parseRoute(location.hash));
    window.addEventListener("hashchange", onChange);
    return () => window.removeEventListener("hashchange", onChange);
  }, []);
  return route;
}
