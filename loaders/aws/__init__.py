"""The AWS entry points: the S3/schedule trigger (Lambda), the Glue jobs, Secrets Manager.

`trigger` runs in AWS Lambda and imports only the standard library and boto3 (the Lambda
runtime provides boto3). `glue_jobs` runs the same pipeline stages as the CLI, configured from
Glue job arguments and Secrets Manager instead of the environment.
"""
