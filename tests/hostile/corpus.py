# ruff: noqa: RUF001  (the characters are the point)
"""The hostile-data corpus: edge-case people and injection strings for every format hrsync
writes (LDAP DN and filter, SCIM filter, CSV, fixed width, X12, Moodle form parameters, line-
based files), as BambooHR employees the way tap-bamboohr emits them.

Each person says what must happen to them: ``fate`` is ``delivered`` (everywhere their data
may go), or where they become a dead letter and why. The strings are data an attacker (or an
unlucky HR clerk) controls: names, job titles, departments, locations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: injection strings per format, for tests that want them one by one
INJECTIONS: dict[str, list[str]] = {
    "ldap_dn": ["Smith,ou=Admins,dc=acme,dc=example", "#Hash", "a+cn=b", 'q"uote', "semi;colon"],
    "ldap_filter": ["*)(uid=*))(|(uid=*", "\\2a", "*", "(cn=*)"],
    "scim_filter": ['x" or userName pr or "', 'Doe" eq "', "a\\\"b"],
    "csv": ['=HYPERLINK("http://evil.example","x")', "+SUM(1,1)", "@cmd|'/C calc'!A0", "-2+3",
            "\t=1", "\r=1", "＝1+1", 'a,"b",c'],
    "x12": ["Ann~ISA*00*", "Lee*NM1:^", "Ops~SE*1*0001~"],
    "moodle_form": ["a&wsfunction=core_user_delete_users&userids[0]=2", "x=y%26z",
                    "users[0][email]=evil@x.example"],
    "line_based": ["Nurse\r\nDELETE FROM users;--", "Head\u2028of People", "Lead\x85Dev"],
    "invisible": ["Mia\u200d", "Ross\u202e", "\ufeffBOM", "Sales\x00", "Zero\u200bWidth"],
}  # fmt: skip


@dataclass(frozen=True)
class Person:
    id: int
    first: str
    last: str
    email: str | None
    title: str = "Engineer"
    department: str = "Engineering"
    location: str = "Denver"
    ssn: str = "123-45-6789"
    #: "delivered", or "dead:<where>:<field>" for each place this person is refused
    fates: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    def employee(self) -> dict[str, Any]:
        """As tap-bamboohr emits an employee (a US W-2 employee: in US payroll)."""
        rec: dict[str, Any] = {
            "id": self.id,
            "employeeNumber": f"H{self.id}",
            "firstName": self.first,
            "lastName": self.last,
            "workEmail": self.email,
            "status": "Active",
            "employmentHistoryStatus": "Full-Time",
            "hireDate": "2024-01-15",
            "dateOfBirth": "1985-06-01",
            "ssn": self.ssn,
            "gender": "Female",
            "jobTitle": self.title,
            "department": self.department,
            "location": self.location,
            "country": "United States",
            "state": "CO",
            "customWorkState": "CO",
            "customFederalFilingStatus": "Single",
            "address1": "1 Main St",
            "city": "Denver",
            "zipcode": "80202",
        }
        rec.update(self.extra)
        return rec


PEOPLE: list[Person] = [
    Person(9001, "Zoë", "O'Brien-Łukasiewicz", "zoe.obrien@acme.example", title="Head of R&D"),
    Person(9002, "Robert", "Smith,ou=Admins,dc=acme,dc=example", "robert.smith@acme.example",
           title="Engineer)(objectClass=*", department="Engineering"),
    Person(9003, "*)(uid=*))(|(uid=*", "\\2a", "star.filter@acme.example", title="*"),
    Person(9004, 'x" or userName pr or "', 'Doe" eq "', "scim.filter@acme.example",
           title='a\\"b'),
    Person(9005, '=HYPERLINK("http://evil.example","x")', "+SUM(1,1)", "csv.one@acme.example",
           title="@cmd|'/C calc'!A0", location="-2+3"),
    Person(9006, "Ann~ISA*00*", "Lee*NM1:^", "x12.ann@acme.example", title="Ops~SE*1*0001~"),
    Person(9007, "Mia\u200d", "Ross\u202e", "mia.ross@acme.example",
           title="Nurse\r\nDELETE FROM users;--", department="Sales\x00"),
    Person(9008, "Kim", "Park", "kim.park\u200d@acme.example",
           fates=("dead:canonical:work_email",)),
    Person(9009, "a&wsfunction=core_user_delete_users&userids[0]=2", "x=y%26z",
           "moodle.form@acme.example", title="users[0][email]=evil@x.example"),
    Person(9010, "Ola", "N" + "o" * 70, "long.name@acme.example",
           fates=("dead:payroll:last_name",)),
    Person(9011, "Never", "Issued", "never.issued@acme.example", ssn="000-12-3456",
           fates=("dead:payroll:ssn", "dead:benefits:ssn")),
    Person(9012, "#Hash", "Space", "hash.space@acme.example", title="Lead\x85Dev",
           location="Head\u2028of People"),
    Person(9013, "Renée", "D’Alessandro", "renee.dalessandro@acme.example",
           title="Ingénieure d’études"),
]  # fmt: skip


def by_id(employee_id: int | str) -> Person:
    return next(p for p in PEOPLE if str(p.id) == str(employee_id))
