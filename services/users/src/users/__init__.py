"""The users service: business rules for users, stored through the db proxy."""
