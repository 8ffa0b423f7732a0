"""The event catalog: the reference list, plus custom events from `[webhooks] custom_events`."""

from __future__ import annotations

from collections.abc import Iterable

# The reference ("Custom services v1.0") list, in its order.
REFERENCE_EVENTS: tuple[str, ...] = (
    "appsrvstartup", "appsrvpause", "appsrvshutdown",
    "procsrvstartup", "procsrvpause", "procsrvshutdown",
    "refreshcache", "setserverdate",
    "userlogin", "userlogout", "userloginfailed",
    "jobcomplete", "jobfailed",
    "logfileinsert", "activityloginsert",
    "accountinsert", "accountupdate", "accountclose", "accountrevoke", "accountdelete",
    "debtinsert", "debtupdate", "debtdelete",
    "payment", "disbursement",
    "debtorinsert", "debtorupdate", "debtordelete", "debtoridnumberchange", "debtornamechange",
    "debtoraddresschange", "debtormerge",
    "customerinsert", "customerupdate", "customeraddresschange",
    "partydeleted", "partyblocked", "partyunblocked", "partyinsert",
    "transaction",
    "extrafieldinsert", "extrafieldupdate", "extrafielddelete",
    "ledgerrespiteinsert", "ledgerrespitedelete",
    "collectionrespiteinsert", "collectionrespitedelete",
    "userinsert", "userupdate", "userdelete",
    "paymentplanactivated", "paymentplandeactivated", "paymentplanbroken", "paymentplanfinished",
    "letterprocessed", "actionperformed", "linkprocesscompleted",
    "creditdebtinsert", "creditdebtupdate", "creditdebtdelete",
    "cardinsert", "cardupdate", "carddelete",
    "creditdebtpledgeinsert", "creditdebtpledgeupdate", "creditdebtpledgedelete",
    "campaigninsert", "campaignupdate", "campaigndelete",
    "approvedjournal",
    "creditdebtinsurancenew", "creditdebtinsuranceupdate", "creditdebtinsurancestatuschanged",
    "conversationduedatepass", "notificationduedatepass", "conversationinsert",
    "conversationnewmessage", "conversationclosure", "conversationreplied",
    "partyparamupdated",
    "ledgerpayment",
    "newcreditorfee", "newcreditorhistorynote",
    "defray", "statuschange",
    "purchase", "recourse",
    "creditdebtserviceinsert", "creditdebtserviceactivate", "creditdebtserviceupdate",
    "creditdebtservicedelete",
)

# Raised by the gateway itself; clients may subscribe to them but not publish them.
GATEWAY_EVENTS: frozenset[str] = frozenset({
    "appsrvstartup", "appsrvshutdown", "procsrvstartup", "procsrvshutdown",
    "userlogin", "userloginfailed", "jobcomplete", "jobfailed", "refreshcache",
})


class EventCatalog:
    def __init__(self, custom: Iterable[str] = ()) -> None:
        self.custom = tuple(n for n in (c.lower() for c in custom) if n not in REFERENCE_EVENTS)
        self.names: tuple[str, ...] = REFERENCE_EVENTS + self.custom
        self._known = frozenset(self.names)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._known

    def normalise(self, name: str) -> str:
        """Lower-case a name; raise ValueError if it is not in the catalog."""
        lowered = name.strip().lower()
        if lowered not in self._known:
            raise ValueError(f"unknown event {name!r} (see GET /webhooks/events)")
        return lowered

    def publishable(self, name: str) -> str:
        lowered = self.normalise(name)
        if lowered in GATEWAY_EVENTS:
            raise ValueError(f"event {lowered!r} is raised by the gateway itself")
        return lowered

    def describe(self) -> list[dict[str, str]]:
        out = []
        for name in self.names:
            origin = ("custom" if name in self.custom
                      else "gateway" if name in GATEWAY_EVENTS else "reference")
            out.append({"name": name, "origin": origin})
        return out
