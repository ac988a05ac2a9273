"""Tests of verify_sam.py's drop-bucket check (run by scripts/check-infra.sh): the template
passes, and the gaps it exists for fail, with a message naming the function and the prefix.

Usage: python -m unittest discover -s infra/checks -p 'test_*.py'
"""

import copy
import os
import unittest

import verify_sam

HERE = os.path.dirname(os.path.abspath(__file__))
TEMPLATE = os.path.join(HERE, "..", "template.yaml")
FUNCTION_S3 = os.path.join(HERE, "function-s3.json")


def statements(template, role):
    return template["Resources"][role]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]


def without(template, role, predicate):
    """The template with the role's statements for which `predicate(stmt)` holds removed."""
    t = copy.deepcopy(template)
    doc = t["Resources"][role]["Properties"]["Policies"][0]["PolicyDocument"]
    doc["Statement"] = [s for s in doc["Statement"] if not predicate(s)]
    return t


def names(stmt, text):
    return text in repr(stmt.get("Resource"))


class DropBucketGrants(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.template = verify_sam.load_template(TEMPLATE)

    def problems(self, template):
        return verify_sam.check_function_s3(template, FUNCTION_S3)

    def test_the_template_grants_what_the_code_does(self):
        self.assertEqual(self.problems(self.template), [])

    def test_by_date_conversions_not_readable_by_upload_audience_fail(self):
        # The template before the fix: upload-audience may read campaigns/* only.
        t = without(self.template, "UploadAudienceRole", lambda s: names(s, "/conversions/*"))
        problems = self.problems(t)
        self.assertEqual(len(problems), 1, problems)
        self.assertIn("upload-audience", problems[0])
        self.assertIn("reads conversions/*", problems[0])
        self.assertIn("s3:GetObject", problems[0])

    def test_a_missing_rejects_report_grant_fails(self):
        t = without(
            self.template,
            "UploadAudienceRole",
            lambda s: s.get("Action") == "s3:PutObject",
        )
        problems = self.problems(t)
        self.assertEqual(len(problems), 1, problems)
        self.assertIn("writes campaigns/*", problems[0])

    def test_without_list_bucket_a_missing_object_is_not_found_fails(self):
        t = without(self.template, "UploadAudienceRole", lambda s: s.get("Action") == "s3:ListBucket")
        problems = self.problems(t)
        self.assertEqual(len(problems), 1, problems)
        self.assertIn("s3:ListBucket", problems[0])

    def test_grants_the_code_does_not_use_fail(self):
        t = copy.deepcopy(self.template)
        statements(t, "HttpApiRole").append(
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": {"Fn::Sub": "${DropBucket.Arn}/conversions/*"}}
        )
        statements(t, "UploadAudienceRole").append(
            {"Effect": "Allow", "Action": ["s3:DeleteObject"], "Resource": {"Fn::Sub": "${DropBucket.Arn}/campaigns/*"}}
        )
        problems = self.problems(t)
        self.assertEqual(len(problems), 2, problems)
        self.assertTrue(any("http-api" in p and "conversions/*" in p for p in problems), problems)
        self.assertTrue(any("s3:deleteobject" in p for p in problems), problems)

    def test_a_grant_it_cannot_read_fails(self):
        t = copy.deepcopy(self.template)
        statements(t, "PollMetricsRole").append({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"})
        problems = self.problems(t)
        self.assertEqual(len(problems), 1, problems)
        self.assertIn("cannot tell", problems[0])


if __name__ == "__main__":
    unittest.main()
