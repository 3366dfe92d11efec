"""Initial passwords for new Active Directory accounts.

AD takes a password only in ``unicodePwd``, as the UTF-16-LE encoding of the password in
double quotes, and only over a protected connection (LDAPS or StartTLS): on a clear-text
connection it answers unwillingToPerform. The value is write-only (AD never returns it) and
never logged, audited or put in a dead letter: those carry attribute names only.
"""

from __future__ import annotations

from urllib.parse import urlsplit

PASSWORD_ATTRIBUTE = "unicodePwd"  # noqa: S105 - an attribute name, not a password
MUST_CHANGE_ATTRIBUTE = "pwdLastSet"  # "0": the user must set a new password at first logon


class PasswordSettingError(ValueError):
    """initial_password cannot work with this configuration."""


def unicode_pwd(password: str) -> bytes:
    """``"password"`` in UTF-16-LE, the only form AD accepts for unicodePwd."""
    if not password:
        raise PasswordSettingError("initial_password is empty")
    if '"' in password:
        # the quotes delimit the value: AD would read a shorter password than configured
        raise PasswordSettingError("initial_password must not contain a double quote")
    return f'"{password}"'.encode("utf-16-le")


def check_password_transport(url: str, start_tls: bool) -> None:
    """AD refuses unicodePwd in clear text: insist on ldaps:// or StartTLS up front, so a
    run does not create accounts and then fail on every password."""
    if urlsplit(url).scheme.lower() != "ldaps" and not start_tls:
        raise PasswordSettingError(
            f"initial_password needs a protected connection: Active Directory refuses "
            f"unicodePwd over plain LDAP ({url}); use ldaps://host:636 or start_tls: true"
        )


def password_attributes(password: str, must_change: bool) -> dict[str, list[bytes | str]]:
    """The attributes that set an initial password on a new account."""
    attrs: dict[str, list[bytes | str]] = {PASSWORD_ATTRIBUTE: [unicode_pwd(password)]}
    if must_change:
        attrs[MUST_CHANGE_ATTRIBUTE] = ["0"]
    return attrs
