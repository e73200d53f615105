"""The sign-in email, sent through the SMTP server the settings name."""

from __future__ import annotations

import os
import smtplib
from email.message import EmailMessage

from pydantic import Field

from opensem.errors import Location, UsageError
from opensem.settings.fields import Section


class MailSettings(Section):
    """Where sign-in emails go out."""

    host: str = Field("127.0.0.1", min_length=1, description="SMTP server host.")
    port: int = Field(25, ge=1, le=65535, description="SMTP server port.")
    sender: str = Field("opensem@localhost", min_length=3, description="The From address.")
    starttls: bool = Field(False, description="Upgrade the connection with STARTTLS.")
    username_env: str | None = Field(
        None, description="Environment variable holding the SMTP user name (never the name)."
    )
    password_env: str | None = Field(
        None, description="Environment variable holding the SMTP password (never the password)."
    )
    timeout_s: float = Field(10.0, gt=0, description="Seconds to wait for the server.")


def send_sign_in_link(settings: MailSettings, to: str, link: str, minutes: int) -> None:
    """Mail a one-time sign-in link."""
    message = EmailMessage()
    message["From"], message["To"] = settings.sender, to
    message["Subject"] = "Your opensem sign-in link"
    message.set_content(
        f"Open this link to sign in to opensem:\n\n{link}\n\n"
        f"It works once, for {minutes} minutes. If you did not ask for it, ignore this email.\n"
    )
    try:
        with smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout_s) as smtp:
            if settings.starttls:
                smtp.starttls()
            if settings.username_env and settings.password_env:
                smtp.login(
                    os.environ.get(settings.username_env, ""),
                    os.environ.get(settings.password_env, ""),
                )
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as error:
        raise UsageError(
            f"the sign-in email could not be sent: {error}",
            Location(key="mail"),
            f"check that an SMTP server listens on {settings.host}:{settings.port}",
        ) from None
