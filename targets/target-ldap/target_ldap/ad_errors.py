"""Active Directory's errors, in words an operator can act on.

AD answers with an LDAP result code and puts its own Win32 error in the diagnostic message,
as eight hex digits before a colon: ``0000052D: Constraint violation - check_password_
restrictions: ...`` (Samba) or ``0000052D: SvcErr: DSID-031A12D2, problem 5003
(WILL_NOT_PERFORM), data 0`` (Windows; there the code may also follow ``data``). The LDAP code
alone is too coarse: 19 constraintViolation is a weak password as well as a value that is too
long, and 53 unwillingToPerform is a password sent without TLS as well as a forbidden change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Win32 code (upper-case hex, 8 digits) -> (attribute it concerns or None, what it means)
AD_CODES: dict[str, tuple[str | None, str]] = {
    "0000052D": (
        "unicodePwd",
        "the password does not meet the domain's password policy (length, complexity or "
        "history); change initial_password or the policy",
    ),
    "00000524": (
        "sAMAccountName",
        "the account name is already used by another account in the domain (outside "
        "base_dn, or not managed by this target)",
    ),
    "00002071": (
        None,
        "the value must be unique in the domain and another object already has it",
    ),
    "0000202F": (
        None,
        "a constraint of the domain is violated: the value is already used by another "
        "object (userPrincipalName and sAMAccountName are unique in the domain) or is out "
        "of range",
    ),
    "00002030": (
        "dn",
        "the parent container does not exist, or the entry is outside this domain "
        "(check base_dn, dn_template and create_missing_ous)",
    ),
    "0000202B": (
        "dn",
        "the directory answered with a referral: the entry is outside this domain "
        "controller's naming contexts (check base_dn and dn_template)",
    ),
    "00002098": (
        None,
        "the bind account has insufficient rights for this change (delegate create/modify "
        "of user objects, and Reset Password for initial passwords, on the OU)",
    ),
    "00000005": (
        None,
        "access denied: the bind account may not make this change",
    ),
    "0000208D": (
        "dn",
        "the parent container does not exist (create the OU or set create_missing_ous)",
    ),
    "0000200B": (
        None,
        "a value has the wrong syntax for its attribute",
    ),
    "00002035": (
        None,
        "the domain controller refuses this operation",
    ),
    "0000052E": (
        "bind_password",
        "invalid credentials for the bind account",
    ),
    "00000533": ("bind_dn", "the bind account is disabled"),
    "00000775": ("bind_dn", "the bind account is locked out"),
    "00000532": ("bind_password", "the bind account's password has expired"),
}

# LDAP result code -> meaning, when AD gives no extended code we know
LDAP_CODES: dict[int, str] = {
    8: "the domain controller requires a protected connection (LDAPS or StartTLS) for this "
    "operation; simple binds and password changes are refused in clear text",
    10: "the directory answered with a referral: the entry is outside this domain "
    "controller's naming contexts (check base_dn and dn_template)",
    19: "a constraint of the directory is violated (value too long, not unique, or a "
    "password policy)",
    50: "the bind account has insufficient access rights for this change",
    53: "the domain controller is unwilling to perform this change",
}

_LEADING_CODE = re.compile(r"^\s*([0-9A-Fa-f]{8})\s*:")
_DATA_CODE = re.compile(r"\bdata\s+([0-9A-Fa-f]{1,8})\b")
_ATTRIBUTE = re.compile(
    r"\b(samAccountName|userPrincipalName|unicodePwd|employeeID|userAccountControl|"
    r"mail|displayName|cn|manager)\b(?!=)",  # not an RDN inside a DN (CN=x,OU=y)
    re.IGNORECASE,
)
_CANONICAL = {
    "samaccountname": "sAMAccountName",
    "userprincipalname": "userPrincipalName",
    "unicodepwd": "unicodePwd",
    "employeeid": "employeeID",
    "useraccountcontrol": "userAccountControl",
    "mail": "mail",
    "displayname": "displayName",
    "cn": "cn",
    "manager": "manager",
}


@dataclass(frozen=True)
class ADError:
    """What AD meant by one refusal."""

    ldap_code: int
    ad_code: str | None  # 8 hex digits, upper-case
    field: str | None  # the attribute it concerns, when known
    reason: str

    @property
    def error_class(self) -> str:
        """A dead-letter class: ``ad_0000052D`` or ``ldap_19``."""
        return f"ad_{self.ad_code}" if self.ad_code else f"ldap_{self.ldap_code}"


def ad_code(message: str) -> str | None:
    """The Win32 code in an AD diagnostic message, as 8 upper-case hex digits: the one after
    ``data`` when it is not 0 (a failed bind: ``80090308: ... data 52e``), else the leading
    one."""
    data = _DATA_CODE.search(message or "")
    if data and int(data.group(1), 16):
        return data.group(1).upper().rjust(8, "0")
    leading = _LEADING_CODE.search(message or "")
    return leading.group(1).upper() if leading else None


def explain(ldap_code: int, message: str) -> ADError | None:
    """AD's meaning of a refused operation, or None when neither code says more than the
    LDAP result itself."""
    code = ad_code(message)
    named = _ATTRIBUTE.search(message or "")
    attribute = _CANONICAL[named.group(1).lower()] if named else None
    if code in AD_CODES:
        field, reason = AD_CODES[code]
        if code == "0000052D" and ldap_code == 53 and "encrypted" in (message or "").lower():
            reason = LDAP_CODES[8]
        return ADError(ldap_code, code, field or attribute, reason)
    if ldap_code in LDAP_CODES:
        return ADError(ldap_code, code, attribute, LDAP_CODES[ldap_code])
    return None
