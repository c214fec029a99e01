// (being built) The camera stills of an incident, for the operators working it.
export function Stills({ incidentId }: { incidentId: string }) {
  void incidentId;
  return null;
}
